// The per-operation energy model: joules = sum over operation kinds of count x energy per
// operation, plus bytes moved x DRAM energy per byte. It is what the BitNet papers use for their
// energy figures (BitNet 2310.11453 Table 2 / Fig. 1, b1.58 2402.17764 Fig. 3, 2B4T 2504.12285
// Table 1), so it is how tritune reproduces them, and it is the fallback meter where no energy
// counter exists. Its figures are always labelled source "model", estimated.
#pragma once
#include <string>
#include <vector>

#include "energy/meter.h"
#include "kernels/op_counts.h"

namespace tritune {

struct OpEnergy {
  double pj = 0;             // picojoules per operation (per byte for memory)
  const char* source = "";   // where the number comes from
  const char* checked = "";  // how far it was verified ("unverified: ..." where not)
};

struct EnergyTable {
  const char* name;  // "7nm", "45nm"
  const char* doc;
  OpEnergy int8_add, int8_mul, fp16_add, fp16_mul, fp32_add, fp32_mul;
  OpEnergy dram_byte;  // memory-traffic term, pJ per byte moved to or from DRAM
};

const std::vector<EnergyTable>& energy_tables();                // 7nm first (the default)
const EnergyTable& find_energy_table(const std::string& name);  // throws Error listing names

struct ModelEnergy {
  double arithmetic_j = 0;  // the operations
  double memory_j = 0;      // weight + activation bytes at the DRAM cost
  double total_j() const { return arithmetic_j + memory_j; }
};

ModelEnergy model_energy(const OpCounts& c, const EnergyTable& t);
// Arithmetic only, in joules (what the papers' "arithmetic operations energy" compares).
double arithmetic_joules(const OpCounts& c, const EnergyTable& t);

// The model as a meter: add_work() accumulates the counts reported between start() and stop();
// results() gives domain "model" entries "arithmetic" and "memory", estimated.
class ModelMeter : public EnergyMeter {
 public:
  explicit ModelMeter(const EnergyTable& table) : table_(table) {}
  std::string source() const override { return "model"; }
  bool estimated() const override { return true; }
  double resolution_joules() const override { return 1e-12; }  // computed, not sampled
  double update_interval_seconds() const override { return 0; }
  std::vector<EnergyDomain> domains() const override { return {EnergyDomain::kModel}; }
  void start() override;
  void stop() override;
  EnergyReading results() const override;
  void add_work(const OpCounts& work) override { work_ += work; }

  const EnergyTable& table() const { return table_; }
  const OpCounts& work() const { return work_; }

 private:
  const EnergyTable& table_;
  OpCounts work_;
  double t_start_ = 0, t_stop_ = 0;
  bool running_ = false;
};

}  // namespace tritune
