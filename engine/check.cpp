#include "engine/check.h"

#include <cstring>

namespace spikegrad::detail {

void throw_error(const char* file, int line, const std::string& msg) {
  // Keep only the path below the project root so messages stay short and stable.
  const char* rel = file;
  for (const char* dir : {"/engine/", "/kernels/", "/models/", "/losses/", "/attacks/", "/datasets/", "/apps/"}) {
    if (const char* p = std::strstr(file, dir)) { rel = p + 1; break; }
  }
  throw Error(msg, std::string(rel) + ":" + std::to_string(line));
}

}  // namespace spikegrad::detail
