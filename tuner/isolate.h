// Runs a measurement in a forked child so a candidate that crashes (a JIT kernel that
// segfaults), hangs or aborts cannot take the tuner down: the child sends its Measurement back
// as one JSON line through a pipe; a child that dies scores `crash` with the signal or exit
// code, one that outlives the timeout is killed (SIGKILL) and scores `timeout`.
//
// A forked child gets only the calling thread; the kernels' pool starts new workers in it
// (kernels/thread_pool.h). The harness runs every kernel, baseline included, inside the
// children.
#pragma once
#include <functional>

#include "kernels/json.h"
#include "tuner/record.h"

namespace tritune {

Measurement run_isolated(const std::function<Measurement()>& fn, double timeout_s);

json::Value measurement_to_json(const Measurement& m);
Measurement measurement_from_json(const json::Value& j);  // throws Error naming the field

}  // namespace tritune
