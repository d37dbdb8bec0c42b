// A temporary directory that mimics the parts of /sys, /proc and /dev the energy backends read.
// Tests build exactly the files a case needs, point ProbeOptions::root at it, and change
// counter files between start() and stop().
#pragma once
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace tritune::testing {

class FakeTree {
 public:
  FakeTree() {
    const char* base = std::getenv("TRITUNE_TEST_TMP");
    std::string dir = base && *base ? base : "/tmp";
    std::filesystem::create_directories(dir);
    std::string tmpl = dir + "/energy_XXXXXX";
    char* d = ::mkdtemp(tmpl.data());
    if (!d) throw std::runtime_error("mkdtemp failed under " + dir);
    root_ = d;
  }
  ~FakeTree() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  const std::string& root() const { return root_; }
  std::string abs(const std::string& p) const { return root_ + p; }

  void write(const std::string& p, const std::string& content) const {
    std::filesystem::create_directories(std::filesystem::path(abs(p)).parent_path());
    std::ofstream f(abs(p), std::ios::trunc);
    f << content;
  }
  void mkdir(const std::string& p) const { std::filesystem::create_directories(abs(p)); }
  void remove(const std::string& p) const { std::filesystem::remove_all(abs(p)); }

  // An MSR device file: 8 bytes at offset = register number x stride (a sparse file; the real
  // driver's stride is 1, see ProbeOptions::msr_stride).
  void write_msr(int cpu, uint64_t reg, uint64_t value, uint64_t stride = 1) const {
    const std::string p = "/dev/cpu/" + std::to_string(cpu) + "/msr";
    std::filesystem::create_directories(std::filesystem::path(abs(p)).parent_path());
    const int fd = ::open(abs(p).c_str(), O_WRONLY | O_CREAT, 0600);
    ASSERT_GE(fd, 0) << abs(p);
    ASSERT_EQ(::pwrite(fd, &value, sizeof value, (off_t)(reg * stride)), (ssize_t)sizeof value);
    ::close(fd);
  }

  // A powercap zone: /sys/class/powercap/<zone>/{name,energy_uj,max_energy_range_uj}.
  void powercap_zone(const std::string& zone, const std::string& name, uint64_t uj,
                     uint64_t max_uj) const {
    const std::string d = "/sys/class/powercap/" + zone;
    write(d + "/name", name + "\n");
    write(d + "/energy_uj", std::to_string(uj) + "\n");
    write(d + "/max_energy_range_uj", std::to_string(max_uj) + "\n");
  }
  void set_uj(const std::string& zone, uint64_t uj) const {
    write("/sys/class/powercap/" + zone + "/energy_uj", std::to_string(uj) + "\n");
  }

 private:
  std::string root_;
};

}  // namespace tritune::testing
