//! link: static-pie
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>
static std::exception_ptr capture(int i) {
    try {
        switch (i % 4) {
        case 0: throw std::runtime_error("runtime " + std::to_string(i));
        case 1: throw std::invalid_argument("invalid " + std::to_string(i));
        case 2: throw i;
        default: throw std::string("string ") + std::to_string(i);
        }
    } catch (...) {
        return std::current_exception();
    }
}
int main() {
    std::vector<std::exception_ptr> ptrs;
    for (int i = 0; i < 12; i++) ptrs.push_back(capture(i));
    for (auto &p : ptrs) {
        try {
            std::rethrow_exception(p);
        } catch (const std::invalid_argument &e) {
            std::printf("invalid_argument: %s\n", e.what());
        } catch (const std::exception &e) {
            std::printf("exception: %s\n", e.what());
        } catch (int i) {
            std::printf("int: %d\n", i);
        } catch (const std::string &s) {
            std::printf("string: %s\n", s.c_str());
        }
    }
    std::exception_ptr e = std::make_exception_ptr(std::overflow_error("made"));
    std::exception_ptr copy = e;
    std::printf("copies equal %d, null compare %d\n", copy == e, std::exception_ptr() == nullptr);
    try { std::rethrow_exception(copy); } catch (const std::overflow_error &o) { std::printf("rethrown copy: %s\n", o.what()); }
    try {
        throw std::bad_cast();
    } catch (const std::exception &ex) {
        std::printf("bad_cast: %s\n", ex.what());
    }
    struct B { virtual ~B() {} };
    struct D : B {};
    B b;
    try {
        (void)dynamic_cast<D &>(b);
    } catch (const std::bad_cast &) {
        std::printf("dynamic_cast to reference threw bad_cast\n");
    }
    try {
        B *np = nullptr;
        (void)typeid(*np);
    } catch (const std::bad_typeid &) {
        std::printf("typeid of null threw bad_typeid\n");
    }
    return 0;
}
