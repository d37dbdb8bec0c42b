#include "tuner/isolate.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "kernels/error.h"

namespace tritune {

json::Value measurement_to_json(const Measurement& m) {
  json::Value j = json::Value::object();
  j.set("status", m.status);
  j.set("reason", m.reason);
  j.set("time_s", json_numbers(m.time_s));
  j.set("baseline_time_s", json_numbers(m.baseline_time_s));
  j.set("baseline", m.baseline_variant);
  j.set("energy_j", json_numbers(m.energy_j));
  j.set("baseline_energy_j", json_numbers(m.baseline_energy_j));
  j.set("energy_source", m.energy_source);
  j.set("compile_s", json_number(m.compile_s));
  return j;
}

Measurement measurement_from_json(const json::Value& j) {
  Measurement m;
  m.status = j.at("status").as_string();
  m.reason = j.at("reason").as_string();
  m.time_s = numbers_of(j.at("time_s"));
  m.baseline_time_s = numbers_of(j.at("baseline_time_s"));
  m.baseline_variant = j.at("baseline").as_string();
  m.energy_j = numbers_of(j.at("energy_j"));
  m.baseline_energy_j = numbers_of(j.at("baseline_energy_j"));
  m.energy_source = j.at("energy_source").as_string();
  m.compile_s = j.at("compile_s").as_double();
  return m;
}

namespace {

Measurement failure(const char* status, std::string reason) {
  Measurement m;
  m.status = status;
  m.reason = std::move(reason);
  return m;
}

void write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t w = ::write(fd, s.data() + done, s.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    done += (size_t)w;
  }
}

}  // namespace

Measurement run_isolated(const std::function<Measurement()>& fn, double timeout_s) {
  int fds[2];
  if (::pipe(fds) != 0) throw Error(std::string("measurement: pipe failed: ") + strerror(errno));
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error(std::string("measurement: fork failed: ") + strerror(errno));
  }
  if (pid == 0) {
    // A tuner killed on its own (SIGTERM to its pid) must not leave a candidate running for up
    // to --timeout: the child dies with it. The parent may already be gone by now.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::close(fds[0]);
    Measurement m;
    try {
      m = fn();
    } catch (const std::exception& e) {
      m = failure(status::kRuntime, e.what());
    } catch (...) {
      m = failure(status::kRuntime, "unknown exception");
    }
    write_all(fds[1], json::dump(measurement_to_json(m)) + "\n");
    ::close(fds[1]);
    ::_exit(0);  // no atexit handlers, no stdio flush of the parent's buffers
  }
  ::close(fds[1]);
  std::string out;
  bool timed_out = false;
  const auto t0 = std::chrono::steady_clock::now();
  while (true) {
    const double left =
        timeout_s - std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int r = ::poll(&p, 1, (int)(left * 1000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;  // re-check the deadline
    char buf[4096];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child exited or died
    out.append(buf, (size_t)n);
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    char why[96];
    std::snprintf(why, sizeof why, "no result after %.3g s: child killed", timeout_s);
    return failure(status::kTimeout, why);
  }
  if (WIFSIGNALED(st)) {
    const int sig = WTERMSIG(st);
    return failure(status::kCrash,
                   "child killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")");
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
    return failure(status::kCrash, "child exited with code " + std::to_string(WEXITSTATUS(st)));
  }
  const size_t nl = out.find('\n');
  if (nl == std::string::npos) return failure(status::kCrash, "child sent no result");
  try {
    return measurement_from_json(json::parse(out.substr(0, nl)));
  } catch (const std::exception& e) {
    return failure(status::kRuntime, std::string("bad result from child: ") + e.what());
  }
}

}  // namespace tritune
