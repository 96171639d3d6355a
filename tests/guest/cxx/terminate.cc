#include <cstdio>
#include <stdexcept>
static void f() noexcept { throw std::runtime_error("escaping noexcept"); }
int main() {
    std::printf("calling noexcept function that throws\n");
    std::fflush(stdout);
    f();
    return 0;
}
