#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>
#include <deque>
#include <list>
#include <array>
#include <tuple>
int main() {
    std::vector<std::string> words;
    unsigned s = 12345;
    for (int i = 0; i < 2000; i++) {
        std::string w;
        s = s * 1103515245 + 12345;
        int len = 1 + (s >> 16) % 8;
        for (int k = 0; k < len; k++) { s = s * 1103515245 + 12345; w += char('a' + (s >> 16) % 26); }
        words.push_back(w);
    }
    std::map<std::string, int> freq;
    for (auto &w : words) freq[w.substr(0, 2)]++;
    int shown = 0;
    for (auto &kv : freq) if (shown++ < 10) std::printf("%s=%d ", kv.first.c_str(), kv.second);
    std::printf("\nmap size %zu\n", freq.size());
    std::unordered_map<std::string, int> um;
    for (auto &w : words) um[w] += 1;
    std::vector<std::pair<std::string, int>> sorted(um.begin(), um.end());
    std::sort(sorted.begin(), sorted.end(), [](auto &a, auto &b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
    for (int i = 0; i < 5; i++) std::printf("top %s %d\n", sorted[i].first.c_str(), sorted[i].second);
    std::stable_sort(words.begin(), words.end(), [](const std::string &a, const std::string &b) { return a.size() < b.size(); });
    std::printf("stable by size: first %s last %s\n", words.front().c_str(), words.back().c_str());
    std::sort(words.begin(), words.end());
    auto last = std::unique(words.begin(), words.end());
    std::printf("unique words %ld, lower_bound(\"m\") at %ld\n", (long)(last - words.begin()), (long)(std::lower_bound(words.begin(), last, "m") - words.begin()));
    std::vector<int> v(1000);
    std::iota(v.begin(), v.end(), -500);
    std::printf("accumulate %ld, count_if even %ld\n", std::accumulate(v.begin(), v.end(), 0L), (long)std::count_if(v.begin(), v.end(), [](int x) { return x % 2 == 0; }));
    std::rotate(v.begin(), v.begin() + 100, v.end());
    std::reverse(v.begin(), v.begin() + 10);
    std::nth_element(v.begin(), v.begin() + 500, v.end());
    std::printf("nth 500 = %d\n", v[500]);
    std::make_heap(v.begin(), v.end());
    std::printf("heap top %d\n", v.front());
    std::function<long(int)> fact = [&](int n) { return n <= 1 ? 1L : n * fact(n - 1); };
    std::vector<std::function<int(int)>> fs = {[](int x) { return x + 1; }, [](int x) { return x * x; }, std::negate<int>()};
    int acc = 3;
    for (auto &f : fs) acc = f(acc);
    std::printf("fact(20) %ld composed %d\n", fact(20), acc);
    auto bound = std::bind(std::minus<int>(), std::placeholders::_2, std::placeholders::_1);
    std::printf("bind %d\n", bound(10, 3));
    auto sp = std::make_shared<std::vector<int>>(5, 7);
    std::weak_ptr<std::vector<int>> wp = sp;
    { auto sp2 = sp; std::printf("use_count %ld\n", sp.use_count()); }
    sp.reset();
    std::printf("expired %d\n", wp.expired());
    std::unique_ptr<int[]> up(new int[10]());
    std::printf("unique_ptr zeroed %d\n", up[9]);
    std::variant<int, double, std::string> var = 3.5;
    std::printf("variant index %zu\n", var.index());
    var = std::string("text");
    std::visit([](auto &&x) { using T = std::decay_t<decltype(x)>; std::printf("visit %s\n", std::is_same_v<T, std::string> ? "string" : "other"); }, var);
    std::optional<int> o;
    std::printf("optional %d %d\n", o.has_value(), o.value_or(9));
    std::set<int> st = {5, 1, 9, 3};
    std::multimap<int, char> mm = {{1, 'a'}, {1, 'b'}, {2, 'c'}};
    std::printf("set:");
    for (int x : st) std::printf(" %d", x);
    std::printf(" multimap count(1)=%zu\n", mm.count(1));
    std::deque<int> dq;
    for (int i = 0; i < 100; i++) { if (i % 2) dq.push_front(i); else dq.push_back(i); }
    std::list<int> li(dq.begin(), dq.end());
    li.sort();
    li.remove_if([](int x) { return x % 3 == 0; });
    std::printf("deque front %d back %d list size %zu\n", dq.front(), dq.back(), li.size());
    auto [p1, p2, p3] = std::make_tuple(1, 2.5, std::string("tuple"));
    std::printf("structured binding %d %.1f %s\n", p1, p2, p3.c_str());
    std::array<int, 5> arr{{5, 3, 1, 4, 2}};
    std::sort(arr.begin(), arr.end(), std::greater<int>());
    std::printf("array %d %d %d %d %d\n", arr[0], arr[1], arr[2], arr[3], arr[4]);
    std::string str = "The quick brown fox";
    std::transform(str.begin(), str.end(), str.begin(), ::toupper);
    std::printf("%s find %zu rfind %zu substr %s npos %d\n", str.c_str(), str.find("QUICK"), str.rfind('O'), str.substr(4, 5).c_str(), str.find("zzz") == std::string::npos);
    std::string big;
    for (int i = 0; i < 10000; i++) big += std::to_string(i);
    std::printf("big string %zu hash %zu\n", big.size(), std::hash<std::string>()(big));
    std::printf("stoi %d stod %g stoul %lu\n", std::stoi("-123"), std::stod("2.5e-3"), std::stoul("ff", nullptr, 16));
    return 0;
}
