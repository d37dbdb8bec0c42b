#include "tuner/database.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "kernels/error.h"

namespace tritune {

namespace {

constexpr const char* kMagic = "tritune_tuning_db";

std::string errno_text() {
  return std::strerror(errno);
}

// Owns an fd and the flock on it.
class LockedFile {
 public:
  LockedFile(const std::string& path, int flags, int lock) : path_(path) {
    fd_ = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("tuning DB " + path + ": cannot open: " + errno_text());
    while (::flock(fd_, lock) != 0) {
      if (errno != EINTR) {
        ::close(fd_);
        throw Error("tuning DB " + path + ": cannot lock: " + errno_text());
      }
    }
  }
  ~LockedFile() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
  }
  int fd() const { return fd_; }
  off_t size() const {
    struct stat st;
    if (::fstat(fd_, &st) != 0) throw Error("tuning DB " + path_ + ": stat: " + errno_text());
    return st.st_size;
  }
  void write_all(const std::string& s) const {
    size_t done = 0;
    while (done < s.size()) {
      const ssize_t w = ::write(fd_, s.data() + done, s.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) throw Error("tuning DB " + path_ + ": write failed: " + errno_text());
      done += (size_t)w;
    }
  }
  void sync() const {
    if (::fsync(fd_) != 0) throw Error("tuning DB " + path_ + ": fsync failed: " + errno_text());
  }
  std::string read_all() const {
    std::string out;
    char buf[1 << 16];
    off_t off = 0;
    while (true) {
      const ssize_t r = ::pread(fd_, buf, sizeof buf, off);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) throw Error("tuning DB " + path_ + ": read failed: " + errno_text());
      if (r == 0) break;
      out.append(buf, (size_t)r);
      off += r;
    }
    return out;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

void make_dirs(const std::string& dir) {
  std::string cur;
  std::stringstream ss(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
      throw Error("tuning DB directory " + cur + ": cannot create: " + errno_text() +
                  " (pass --db-dir DIR)");
    }
  }
}

json::Value header_json(const Fingerprint& fp) {
  json::Value h = json::Value::object();
  h.set(kMagic, 1);
  h.set("fingerprint", fp.to_json());
  h.set("created", json_number((double)std::time(nullptr)));
  return h;
}

// Parses the header line; throws Error naming the file.
Fingerprint parse_header(const std::string& path, const std::string& line) {
  json::Value h;
  try {
    h = json::parse(line);
  } catch (const Error& e) {
    throw Error("tuning DB " + path + ":1: header is not valid JSON (" + e.what() +
                "); this is not a tritune tuning database or it is damaged: move it away");
  }
  const json::Value* magic = h.find(kMagic);
  if (!magic || !magic->is_number() || magic->as_double() != 1) {
    throw Error("tuning DB " + path + ":1: no '" + kMagic +
                "': 1 header; not a tritune tuning database (version 1)");
  }
  try {
    return Fingerprint::from_json(h.at("fingerprint"));
  } catch (const Error& e) {
    throw Error("tuning DB " + path + ":1: " + e.what());
  }
}

std::string first_line(const std::string& text) {
  const size_t nl = text.find('\n');
  return nl == std::string::npos ? text : text.substr(0, nl);
}

}  // namespace

std::string TuningDb::path_in(const std::string& dir, const Fingerprint& fp) {
  return dir + "/" + fp.file_stem() + ".jsonl";
}

TuningDb TuningDb::open_dir(const std::string& dir, const Fingerprint& fp) {
  make_dirs(dir);
  return open_file(path_in(dir, fp), fp);
}

Fingerprint TuningDb::read_header(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("tuning DB " + path + ": cannot open for reading");
  std::string line;
  std::getline(in, line);
  return parse_header(path, line);
}

TuningDb TuningDb::open_file(const std::string& path, const Fingerprint& fp) {
  LockedFile f(path, O_RDWR | O_CREAT | O_APPEND, LOCK_EX);
  if (f.size() == 0) {
    f.write_all(json::dump(header_json(fp)) + "\n");
    f.sync();
    return TuningDb(path, fp);
  }
  const std::string text = f.read_all();
  const Fingerprint theirs = parse_header(path, first_line(text));
  const std::string d = fp.diff(theirs);
  if (!d.empty()) {
    throw Error("tuning DB " + path + " was recorded for another fingerprint (" + d +
                "); its results do not apply to this CPU / kernel build and are refused. Tune "
                "again (a new file is used per fingerprint) or pass --db-dir for a fresh "
                "directory.");
  }
  return TuningDb(path, fp);
}

DbLoad TuningDb::load() const {
  LockedFile f(path_, O_RDONLY, LOCK_SH);
  const std::string text = f.read_all();
  DbLoad out;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    const bool complete = nl != std::string::npos;
    if (!complete) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line_no == 1) {
      const std::string d = fp_.diff(parse_header(path_, line));
      if (!d.empty()) throw Error("tuning DB " + path_ + " changed fingerprint: " + d);
      continue;
    }
    if (line.empty()) continue;
    try {
      out.records.push_back(Record::from_json(json::parse(line)));
    } catch (const Error& e) {
      out.warnings.push_back(path_ + ":" + std::to_string(line_no) + ": " +
                             (complete ? "corrupt line" : "truncated last line") + " (" + e.what() +
                             "), skipped");
    }
  }
  return out;
}

void TuningDb::append(const Record& r) const {
  std::string line = json::dump(r.to_json()) + "\n";
  LockedFile f(path_, O_RDWR | O_APPEND, LOCK_EX);
  const off_t size = f.size();
  if (size > 0) {
    char last = '\n';
    if (::pread(f.fd(), &last, 1, size - 1) != 1) {
      throw Error("tuning DB " + path_ + ": read failed: " + errno_text());
    }
    // A killed writer left a fragment: end it so this record is a line of its own.
    if (last != '\n') line.insert(line.begin(), '\n');
  }
  f.write_all(line);
  f.sync();
}

}  // namespace tritune
