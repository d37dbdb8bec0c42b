// The tuning database: one JSON-lines file per fingerprint (tuner/fingerprint.h).
//   line 1 : {"tritune_tuning_db": 1, "fingerprint": {...}, "created": <unix time>}
//   line 2+: one Record each (tuner/record.h), appended as measured.
// Crash safety: every record is one write() of a whole line under an exclusive flock, followed
// by fsync, so a killed tuner leaves at most one truncated last line; the next append starts a
// fresh line and loading reports the fragment with its line number and skips it. Two tuners on
// one file serialize their appends through the lock.
#pragma once
#include <string>
#include <vector>

#include "tuner/fingerprint.h"
#include "tuner/record.h"

namespace tritune {

struct DbLoad {
  std::vector<Record> records;
  std::vector<std::string> warnings;  // "<file>:<line>: <why> (skipped)"
};

class TuningDb {
 public:
  // The file of `fp` in `dir` (created with its header if absent; dir is created too). Throws
  // Error if the file's header names another fingerprint or is not a tuning-DB header.
  static TuningDb open_dir(const std::string& dir, const Fingerprint& fp);
  // An explicit file (e.g. one copied from another machine): same checks.
  static TuningDb open_file(const std::string& path, const Fingerprint& fp);
  // Path of fp's file in dir (no I/O).
  static std::string path_in(const std::string& dir, const Fingerprint& fp);
  // Reads a file's header fingerprint without opening it for this machine (for listings).
  static Fingerprint read_header(const std::string& path);

  const std::string& path() const { return path_; }
  const Fingerprint& fingerprint() const { return fp_; }

  // Every well-formed record; corrupt or truncated lines are reported in `warnings`.
  DbLoad load() const;
  // Appends one record (flock LOCK_EX, one write, fsync). Throws Error on I/O failure.
  void append(const Record& r) const;

 private:
  TuningDb(std::string path, Fingerprint fp) : path_(std::move(path)), fp_(std::move(fp)) {}
  std::string path_;
  Fingerprint fp_;
};

}  // namespace tritune
