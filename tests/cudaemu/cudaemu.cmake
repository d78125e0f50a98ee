# The emulated CUDA backend (SPIKEGRAD_CUDA_EMULATION=ON): every .cu/.cuh of the library and the tests is
# rewritten by cudaemu_rewrite into build/cudaemu_src/ (same relative paths, lines kept) and compiled as
# C++ against the stand-in headers in tests/cudaemu/include, with the emulator's runtime linked in.
# A test instrument only: the engine's own code does not know about it.
set(CUDAEMU_DIR ${CMAKE_SOURCE_DIR}/tests/cudaemu)
set(CUDAEMU_SRC ${CMAKE_BINARY_DIR}/cudaemu_src)
find_package(Boost 1.66 REQUIRED COMPONENTS context)

add_executable(cudaemu_rewrite ${CUDAEMU_DIR}/rewrite.cpp)

# cudaemu_rewrite_sources(<out-var> <file>...): generated .cpp files for the .cu inputs and rewritten
# copies of the .cuh inputs (both returned, so the target that lists them waits for them).
function(cudaemu_rewrite_sources out)
  set(generated)
  foreach(file ${ARGN})
    file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR} ${file})
    if(file MATCHES "\\.cu$")
      set(target_file ${CUDAEMU_SRC}/${rel}.cpp)
    else()
      set(target_file ${CUDAEMU_SRC}/${rel})
    endif()
    add_custom_command(OUTPUT ${target_file}
      COMMAND cudaemu_rewrite ${file} ${target_file} ${rel}
      DEPENDS ${file} cudaemu_rewrite
      COMMENT "cudaemu: rewriting ${rel}")
    list(APPEND generated ${target_file})
    if(file MATCHES "\\.cu$")
      # CUDA sources use `#pragma unroll`, which means nothing to g++.
      set_source_files_properties(${target_file} PROPERTIES COMPILE_OPTIONS "-Wno-unknown-pragmas;-Wno-sign-compare")
    endif()
  endforeach()
  set(${out} ${generated} PARENT_SCOPE)
endfunction()

set(CUDAEMU_RUNTIME_SOURCES
  ${CUDAEMU_DIR}/scheduler.cpp ${CUDAEMU_DIR}/memory.cpp ${CUDAEMU_DIR}/runtime.cpp ${CUDAEMU_DIR}/wmma.cpp
  ${CUDAEMU_DIR}/cublas.cpp ${CUDAEMU_DIR}/cudnn.cpp)

# Makes `target` (the spikegrad library) an emulated-CUDA build of itself.
function(cudaemu_attach target)
  target_sources(${target} PRIVATE ${CUDAEMU_RUNTIME_SOURCES})
  # Rewritten headers first, so `#include "kernels/x.cuh"` finds the rewritten copy; stand-in CUDA headers next.
  target_include_directories(${target} BEFORE PUBLIC ${CUDAEMU_SRC} ${CUDAEMU_DIR}/include)
  target_compile_definitions(${target} PUBLIC SPIKEGRAD_CUDA=1 SPIKEGRAD_CUDA_EMULATION=1)
  target_link_libraries(${target} PUBLIC Boost::context)
  if(SPIKEGRAD_SANITIZE)
    target_compile_definitions(${target} PUBLIC BOOST_USE_ASAN)
  endif()
endfunction()
