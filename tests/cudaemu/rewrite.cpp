// cudaemu source rewriter: turns a .cu/.cuh file into C++ that the emulated runtime can run, keeping every
// line where it was (a #line directive names the original file, so diagnostics and __FILE__/__LINE__
// point at the real source). Only two constructs need rewriting; the rest is headers and macros:
//   kernel<<<grid, block[, smem[, stream]]>>>(args)
//       -> ::cudaemu::launch([&](auto&... a) { kernel(a...); }, "kernel", __FILE__, __LINE__, grid, block...)(args)
//   __shared__ [__align__(n)] T name[dims];
//       -> auto& name = ::cudaemu::shared_var<T[dims], n>([] {}, "name", __FILE__, __LINE__);
//   extern __shared__ [__align__(n)] T name[];
//       -> auto* const name = ::cudaemu::dynamic_shared<T>("name", __FILE__, __LINE__);
// Comments and string literals are left alone. Usage: cudaemu_rewrite <in> <out> <name for #line>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& file, const std::string& text, size_t pos, const std::string& what) {
  const long line = 1 + std::count(text.begin(), text.begin() + long(pos), '\n');
  std::cerr << file << ":" << line << ": cudaemu_rewrite: " << what << "\n";
  std::exit(1);
}

// The text with comments, string and character literals blanked (newlines kept), so searches see code only.
std::string code_only(const std::string& s) {
  std::string m = s;
  size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 2, "//") == 0) {
      while (i < s.size() && s[i] != '\n') m[i++] = ' ';
    } else if (s.compare(i, 2, "/*") == 0) {
      const size_t end = s.find("*/", i + 2);
      const size_t stop = end == std::string::npos ? s.size() : end + 2;
      for (; i < stop; ++i)
        if (s[i] != '\n') m[i] = ' ';
    } else if (s[i] == '"' || s[i] == '\'') {
      const char q = s[i];
      m[i++] = ' ';
      while (i < s.size() && s[i] != q && s[i] != '\n') {
        if (s[i] == '\\' && i + 1 < s.size()) m[i++] = ' ';
        m[i++] = ' ';
      }
      if (i < s.size() && s[i] == q) m[i++] = ' ';
    } else {
      ++i;
    }
  }
  return m;
}

bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

size_t count_newlines(const std::string& s) { return size_t(std::count(s.begin(), s.end(), '\n')); }

// Parameters of the #define whose logical line holds `pos`, or none when `pos` is not in a macro.
std::vector<std::string> macro_params(const std::string& code, size_t pos) {
  size_t start = code.rfind('\n', pos);
  start = start == std::string::npos ? 0 : start + 1;
  while (start >= 2 && code[start - 2] == '\\') {  // the previous line continues into this one
    const size_t prev = code.rfind('\n', start - 2);
    start = prev == std::string::npos ? 0 : prev + 1;
  }
  size_t i = code.find_first_not_of(" \t", start);
  if (i == std::string::npos || code[i] != '#') return {};
  i = code.find_first_not_of(" \t", i + 1);
  if (code.compare(i, 6, "define") != 0) return {};
  i = code.find_first_not_of(" \t", i + 6);
  while (i < code.size() && ident_char(code[i])) ++i;
  if (i >= code.size() || code[i] != '(') return {};
  const size_t close = code.find(')', i);
  std::vector<std::string> params;
  std::stringstream list(code.substr(i + 1, close - i - 1));
  for (std::string p; std::getline(list, p, ',');) params.push_back(trim(p));
  return params;
}

// kernel<<<cfg>>>(args): `at` is the position of "<<<".
void rewrite_launch(const std::string& file, std::string& text, std::string& code, size_t at) {
  // The kernel expression ends right before <<<: [ns::]name[<template args>].
  size_t begin = at;
  while (begin > 0 && (code[begin - 1] == ' ' || code[begin - 1] == '\t')) --begin;
  size_t end_expr = begin;
  if (begin > 0 && code[begin - 1] == '>') {
    int depth = 0;
    do {
      --begin;
      if (code[begin] == '>') ++depth;
      if (code[begin] == '<') --depth;
    } while (begin > 0 && depth > 0);
    if (depth != 0) die(file, text, at, "unbalanced template arguments before <<<");
  }
  while (begin > 0 && (ident_char(code[begin - 1]) || code[begin - 1] == ':')) --begin;
  const std::string expr = trim(text.substr(begin, end_expr - begin));
  if (expr.empty()) die(file, text, at, "no kernel name before <<<");
  const size_t close = code.find(">>>", at + 3);
  if (close == std::string::npos) die(file, text, at, "<<< without >>>");
  const std::string config = text.substr(at + 3, close - at - 3);

  std::string name = "\"" + expr + "\"";
  for (const std::string& p : macro_params(code, at))
    if (p == expr) name = "#" + expr;  // a macro's kernel parameter: name the kernel it expands to
  const std::string replacement =
      "::cudaemu::launch([&](auto&... cudaemu_args) { " + expr + "(cudaemu_args...); }, " + name +
      ", __FILE__, __LINE__, " + config + ")";
  text.replace(begin, close + 3 - begin, replacement);
  code.replace(begin, close + 3 - begin, replacement);
}

// __shared__ declaration: `at` is the position of "__shared__".
void rewrite_shared(const std::string& file, std::string& text, std::string& code, size_t at) {
  size_t begin = at;
  bool is_extern = false;
  size_t before = code.find_last_not_of(" \t", at == 0 ? 0 : at - 1);
  if (at > 0 && before != std::string::npos && before >= 5 && code.compare(before - 5, 6, "extern") == 0 &&
      (before < 6 || !ident_char(code[before - 6]))) {
    is_extern = true;
    begin = before - 5;
  }
  const size_t semicolon = code.find(';', at);
  if (semicolon == std::string::npos) die(file, text, at, "__shared__ declaration without ';'");
  std::string decl = code.substr(at + 10, semicolon - at - 10);
  const size_t newlines = count_newlines(decl);
  for (char& c : decl)
    if (c == '\n' || c == '\r') c = ' ';

  std::string align = "0";
  const size_t a = decl.find("__align__");
  if (a != std::string::npos) {
    const size_t open = decl.find('(', a), shut = decl.find(')', a);
    if (open == std::string::npos || shut == std::string::npos) die(file, text, at, "malformed __align__");
    align = trim(decl.substr(open + 1, shut - open - 1));
    decl.erase(a, shut + 1 - a);
  }
  decl = trim(decl);
  if (decl.find('=') != std::string::npos) die(file, text, at, "__shared__ variables cannot have initialisers");
  // Declarators separated by top-level commas share the first one's type: `__shared__ double a[32], b[32];`.
  std::vector<std::string> declarators;
  int depth = 0;
  size_t piece = 0;
  for (size_t i = 0; i < decl.size(); ++i) {
    const char c = decl[i];
    if (c == '[' || c == '(' || c == '<') ++depth;
    if (c == ']' || c == ')' || c == '>') --depth;
    if (c == ',' && depth == 0) {
      declarators.push_back(trim(decl.substr(piece, i - piece)));
      piece = i + 1;
    }
  }
  declarators.push_back(trim(decl.substr(piece)));

  std::string type, replacement;
  for (size_t d = 0; d < declarators.size(); ++d) {
    const std::string& one = declarators[d];
    size_t name_end = one.size();
    while (name_end > 0 && one[name_end - 1] == ']') {  // peel trailing [dims]
      int nest = 0;
      do {
        --name_end;
        if (one[name_end] == ']') ++nest;
        if (one[name_end] == '[') --nest;
      } while (name_end > 0 && nest > 0);
      while (name_end > 0 && one[name_end - 1] == ' ') --name_end;
    }
    const std::string dims = one.substr(name_end);
    size_t name_begin = name_end;
    while (name_begin > 0 && ident_char(one[name_begin - 1])) --name_begin;
    const std::string name = one.substr(name_begin, name_end - name_begin);
    if (d == 0) type = trim(one.substr(0, name_begin));
    else if (!trim(one.substr(0, name_begin)).empty()) die(file, text, at, "pointer declarators in a __shared__ list");
    if (name.empty() || type.empty()) die(file, text, at, "cannot read the type and name of this __shared__ declaration");
    if (d > 0) replacement += "; ";
    if (is_extern) {
      if (trim(dims) != "[]") die(file, text, at, "extern __shared__ must be an unsized array");
      replacement += "auto* const " + name + " = ::cudaemu::dynamic_shared<" + type + ">(\"" + name + "\", __FILE__, __LINE__)";
    } else {
      replacement += "auto& " + name + " = ::cudaemu::shared_var<" + type + " " + dims + ", " + align + ">([] {}, \"" +
                     name + "\", __FILE__, __LINE__)";
    }
  }
  replacement += std::string(newlines, '\n');
  text.replace(begin, semicolon - begin, replacement);
  code.replace(begin, semicolon - begin, replacement);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: cudaemu_rewrite <input.cu> <output.cpp> <name for #line>\n";
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::cerr << argv[1] << ": cudaemu_rewrite: cannot read\n";
    return 1;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  std::string code = code_only(text);

  for (size_t at = code.find("<<<"); at != std::string::npos; at = code.find("<<<", at + 1))
    rewrite_launch(argv[1], text, code, at);
  for (size_t at = code.find("__shared__"); at != std::string::npos; at = code.find("__shared__", at + 1)) {
    if ((at > 0 && ident_char(code[at - 1])) || ident_char(code[at + 10])) continue;
    rewrite_shared(argv[1], text, code, at);
  }

  const std::string out_path = argv[2], tmp = out_path + ".tmp";
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(out_path).parent_path(), ec);
  {
    std::ofstream out(tmp, std::ios::binary);
    out << "#line 1 \"" << argv[3] << "\"\n" << text;
    if (!out) {
      std::cerr << tmp << ": cudaemu_rewrite: cannot write\n";
      return 1;
    }
  }
  if (std::rename(tmp.c_str(), out_path.c_str()) != 0) {
    std::cerr << out_path << ": cudaemu_rewrite: cannot rename into place\n";
    return 1;
  }
  return 0;
}
