// Search space of the I2_S family (i2s_generator.cpp).
#include "generators/space.h"
namespace tritune {
std::vector<SearchSpace> i2s_spaces() { return {}; }
}  // namespace tritune
