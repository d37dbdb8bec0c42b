#include "energy/meter.h"

#include <cstdio>

namespace tritune {

const char* energy_domain_name(EnergyDomain d) {
  switch (d) {
    case EnergyDomain::kPackage:
      return "package";
    case EnergyDomain::kCores:
      return "cores";
    case EnergyDomain::kDram:
      return "dram";
    case EnergyDomain::kUncore:
      return "uncore";
    case EnergyDomain::kPsys:
      return "psys";
    case EnergyDomain::kModel:
      return "model";
    case EnergyDomain::kCount:
      break;
  }
  return "?";
}

bool EnergyReading::has(EnergyDomain d) const {
  for (const auto& e : domains) {
    if (e.domain == d) return true;
  }
  return false;
}

double EnergyReading::joules(EnergyDomain d) const {
  double s = 0;
  for (const auto& e : domains) {
    if (e.domain == d) s += e.joules;
  }
  return s;
}

std::string EnergyReading::primary_domain() const {
  if (has(EnergyDomain::kPackage)) return "package";
  if (has(EnergyDomain::kPsys)) return "psys";
  if (has(EnergyDomain::kCores) || has(EnergyDomain::kDram)) return "cores+dram";
  if (has(EnergyDomain::kModel)) return "model";
  return "none";
}

double EnergyReading::primary_joules() const {
  if (has(EnergyDomain::kPackage)) return joules(EnergyDomain::kPackage);
  if (has(EnergyDomain::kPsys)) return joules(EnergyDomain::kPsys);
  if (has(EnergyDomain::kCores) || has(EnergyDomain::kDram)) {
    return joules(EnergyDomain::kCores) + joules(EnergyDomain::kDram);
  }
  return joules(EnergyDomain::kModel);
}

std::string EnergyReading::to_string() const {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%.6g J %s over %.4g s (%s%s, resolution %.3g J)",
                primary_joules(), primary_domain().c_str(), seconds, source.c_str(),
                estimated ? ", estimated" : "", resolution_j);
  std::string s = buf;
  for (const auto& d : domains) {
    std::snprintf(buf, sizeof buf, "; %s[%s]=%.6g J", energy_domain_name(d.domain), d.label.c_str(),
                  d.joules);
    s += buf;
  }
  if (!note.empty()) s += "; " + note;
  return s;
}

}  // namespace tritune
