// Search space of the full-precision baseline family (fp_generator.cpp).
#include "generators/space.h"
namespace tritune {
std::vector<SearchSpace> fp_spaces() { return {}; }
}  // namespace tritune
