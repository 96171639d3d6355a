//! link: static-pie
//! opt: -O0
#include <cstdio>
#include <memory>
#include <typeinfo>
#include <vector>
#include <cxxabi.h>
#include <cstdlib>
struct Shape { virtual ~Shape() = default; virtual double area() const = 0; virtual const char *kind() const { return "shape"; } };
struct Rect : Shape { double w, h; Rect(double a, double b) : w(a), h(b) {} double area() const override { return w * h; } const char *kind() const override { return "rect"; } };
struct Square : Rect { explicit Square(double s) : Rect(s, s) {} const char *kind() const override { return "square"; } };
struct Circle : Shape { double r; explicit Circle(double x) : r(x) {} double area() const override { return 3.25 * r * r; } };
struct Named { virtual ~Named() = default; virtual const char *label() const { return "named"; } };
struct Both : Square, Named { Both() : Square(2) {} const char *label() const override { return "both"; } };
struct VBase { int v = 1; virtual ~VBase() = default; };
struct VL : virtual VBase { int l = 2; };
struct VR : virtual VBase { int r = 3; };
struct Diamond : VL, VR { int d = 4; };
template <typename T> static const char *demangled() { static char buf[256]; int st; char *n = abi::__cxa_demangle(typeid(T).name(), nullptr, nullptr, &st); snprintf(buf, sizeof buf, "%s", n); free(n); return buf; }
int main() {
    std::vector<std::unique_ptr<Shape>> v;
    v.emplace_back(new Rect(2, 3));
    v.emplace_back(new Square(4));
    v.emplace_back(new Circle(1));
    v.emplace_back(new Both());
    double total = 0;
    for (auto &s : v) {
        total += s->area();
        std::printf("%s area %.2f typeid %s rect? %d named? %d\n", s->kind(), s->area(), typeid(*s).name(), dynamic_cast<Rect *>(s.get()) != nullptr,
                    dynamic_cast<Named *>(s.get()) != nullptr);
    }
    std::printf("total %.2f\n", total);
    Both b;
    Named *n = &b;
    Shape *sh = dynamic_cast<Shape *>(n);
    std::printf("cross cast %s %s, label %s\n", sh ? "ok" : "null", sh ? sh->kind() : "-", n->label());
    Diamond d;
    VBase *vb = &d;
    VL *vl = &d;
    std::printf("diamond %d %d %d %d via vbase %d downcast %d\n", d.v, d.l, d.r, d.d, vb->v, dynamic_cast<Diamond *>(vb)->d);
    (void)vl;
    std::printf("demangled: %s | %s | %s\n", demangled<std::vector<int>>(), demangled<Diamond>(), demangled<int (*)(double, char)>());
    std::printf("type_info equality %d before %d\n", typeid(Rect) == typeid(*v[0]), typeid(Rect).before(typeid(Square)) || typeid(Square).before(typeid(Rect)));
    return 0;
}
