#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>
struct Base { virtual ~Base() {} virtual const char *name() const { return "Base"; } };
struct Derived : Base { int v; explicit Derived(int x) : v(x) {} const char *name() const override { return "Derived"; } };
struct Tracker {
    static std::vector<int> log;
    int id;
    explicit Tracker(int i) : id(i) { log.push_back(id); }
    ~Tracker() { log.push_back(-id); }
};
std::vector<int> Tracker::log;
__attribute__((noinline)) static int deep(int n, int throw_at) {
    Tracker t(n);
    if (n == throw_at) throw Derived(n * 10);
    if (n == 0) return 0;
    return deep(n - 1, throw_at) + 1;
}
__attribute__((noinline)) static void rethrower() {
    try {
        deep(5, 2);
    } catch (Base &b) {
        std::printf("rethrower caught %s, rethrowing\n", b.name());
        throw;
    }
}
struct Thrower { ~Thrower() noexcept(false) {} };
static int counted = 0;
__attribute__((noinline)) static void maybe(int i) { if (i % 3 == 0) throw std::runtime_error("r" + std::to_string(i)); counted++; }
int main() {
    try {
        deep(200, 37);
    } catch (const Derived &d) {
        std::printf("caught Derived v=%d after unwinding, log size %zu\n", d.v, Tracker::log.size());
    }
    long s = 0;
    for (size_t i = 0; i < Tracker::log.size(); i++) s = s * 3 + Tracker::log[i];
    std::printf("destructor order hash %ld first %d last %d\n", s, Tracker::log.front(), Tracker::log.back());
    Tracker::log.clear();
    try {
        rethrower();
    } catch (Derived &d) {
        std::printf("outer caught rethrown Derived v=%d\n", d.v);
    }
    try {
        throw std::out_of_range("index 7");
    } catch (const std::logic_error &e) {
        std::printf("caught by base logic_error: %s\n", e.what());
    }
    try {
        std::vector<int> v(3);
        (void)v.at(10);
    } catch (const std::exception &e) {
        std::printf("vector::at threw: %s\n", e.what());
    }
    try {
        throw 42;
    } catch (long) {
        std::printf("wrong: long\n");
    } catch (int i) {
        std::printf("caught int %d\n", i);
    }
    try {
        throw "c string";
    } catch (const char *p) {
        std::printf("caught const char* %s\n", p);
    }
    try {
        try {
            throw std::runtime_error("inner");
        } catch (...) {
            std::throw_with_nested(std::logic_error("outer"));
        }
    } catch (const std::exception &e) {
        std::printf("nested outer: %s\n", e.what());
        try {
            std::rethrow_if_nested(e);
        } catch (const std::exception &in) {
            std::printf("nested inner: %s\n", in.what());
        }
    }
    int caught = 0;
    for (int i = 0; i < 3000; i++) {
        try { maybe(i); } catch (const std::runtime_error &e) { caught++; }
    }
    std::printf("loop: caught %d counted %d\n", caught, counted);
    try {
        std::string s2(10, 'x');
        s2.reserve(s2.max_size() + 1);
    } catch (const std::length_error &e) {
        std::printf("length_error caught\n");
    }
    try {
        throw Derived(7);
    } catch (Base b) {
        std::printf("caught by value (sliced): %s\n", b.name());
    }
    std::printf("uncaught_exceptions now %d\n", std::uncaught_exceptions());
    return 0;
}
