//! stdin: iostream.stdin
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>
#include <cmath>
int main() {
    int a; double b; std::string w;
    std::cin >> a >> b >> w;
    std::cout << "read: " << a << " " << b << " " << w << "\n";
    int h;
    std::cin >> std::hex >> h >> std::dec;
    std::cout << "hex in: " << h << "\n";
    std::string line;
    std::getline(std::cin >> std::ws, line);
    std::cout << "line: [" << line << "]\n";
    std::vector<int> v;
    int x;
    while (std::cin >> x) v.push_back(x);
    std::cout << "numbers:";
    for (int n : v) std::cout << ' ' << n;
    std::cout << " eof=" << std::cin.eof() << " fail=" << std::cin.fail() << std::endl;
    const double vals[] = {0.0, 1.0 / 3, 123456.789, 1e-7, 6.02e23, -2.5, M_PI};
    for (double d : vals) {
        std::cout << d << " | " << std::fixed << std::setprecision(3) << d << " | " << std::scientific << d << " | "
                  << std::defaultfloat << std::setprecision(12) << d << " | " << std::hexfloat << d << std::defaultfloat
                  << std::setprecision(6) << "\n";
    }
    std::cout << std::setw(10) << std::setfill('*') << 42 << "|" << std::left << std::setw(8) << "ab" << "|" << std::right << std::setfill(' ') << "\n";
    std::cout << std::showbase << std::hex << 255 << " " << std::oct << 8 << " " << std::dec << std::noshowbase << std::showpos << 5
              << std::noshowpos << " " << std::boolalpha << true << " " << false << std::noboolalpha << "\n";
    std::cout << std::uppercase << std::hex << 0xabcdef << std::nouppercase << std::dec << "\n";
    std::ostringstream os;
    os << "composed " << 1 << ' ' << 2.5 << ' ' << 'c' << ' ' << std::string("str");
    std::cout << os.str() << " (" << os.str().size() << ")\n";
    std::istringstream is("10 20 thirty 40");
    int p, q, r;
    is >> p >> q >> r;
    std::cout << "istringstream: " << p << " " << q << " fail=" << is.fail() << "\n";
    is.clear();
    std::string word;
    is >> word >> r;
    std::cout << "after clear: " << word << " " << r << "\n";
    long double ld = 1.0L / 3;
    std::cout << std::setprecision(20) << ld << "\n";
    std::cerr << "to cerr" << std::endl;
    std::clog << "to clog\n";
    std::cout << 1e300 * 1e300 << " " << -(1e300 * 1e300) << " " << std::nan("") << "\n";
    return 0;
}
