# cmake/cuda.cmake — the CUDA plugin (issue 5). Included at the end of the top-level
# CMakeLists.txt: `include(cmake/cuda.cmake)`. When CMake finds nvcc it builds
# libborn-cuda.so (a MODULE: loaded by libborn with dlopen, never linked) beside libborn, with
# the CUDA runtime linked statically and cuBLAS dynamically. Without the toolkit nothing changes.
# The GPU test (tests/backend/test_cuda.c) needs no CUDA to compile: it is built either way and
# skips its device tests when no GPU is found.
#   -DBORN_CUDA=OFF skips the plugin; -DCMAKE_CUDA_ARCHITECTURES="90" narrows the targets.
option(BORN_CUDA "Build the CUDA plugin when the CUDA toolkit is found" ON)

if(BORN_CUDA)
  include(CheckLanguage)
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
endif()

if(BORN_CUDA AND CMAKE_CUDA_COMPILER)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80 90) # A100, H100/H200 (PTX for 90 runs on newer GPUs)
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  file(GLOB BORN_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/backend_cuda/*.c
       ${CMAKE_SOURCE_DIR}/src/backend_cuda/*.cu)
  add_library(born_cuda MODULE ${BORN_CUDA_SOURCES})
  set_target_properties(born_cuda PROPERTIES
    OUTPUT_NAME born-cuda
    PREFIX lib
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR} # beside libborn.so, where the loader looks
    CUDA_STANDARD 17
    CUDA_STANDARD_REQUIRED ON
    C_VISIBILITY_PRESET hidden
    CUDA_VISIBILITY_PRESET hidden)
  target_include_directories(born_cuda PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
  target_compile_definitions(born_cuda PRIVATE _POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)
  target_compile_options(born_cuda PRIVATE $<$<COMPILE_LANGUAGE:C>:${BORN_WARNINGS}>
                         $<$<COMPILE_LANGUAGE:CUDA>:-O3>)
  target_link_libraries(born_cuda PRIVATE CUDA::cudart_static CUDA::cublas CUDA::cublasLt Threads::Threads)
  install(TARGETS born_cuda LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  set(BORN_CUDA_PLUGIN_FILE $<TARGET_FILE:born_cuda>)
  message(STATUS "born: building the CUDA plugin libborn-cuda.so (${CMAKE_CUDA_COMPILER})")
else()
  set(BORN_CUDA_PLUGIN_FILE ${CMAKE_BINARY_DIR}/libborn-cuda.so)
  message(STATUS "born: CUDA toolkit not found (or BORN_CUDA=OFF); no CUDA plugin")
endif()

# Every tests/backend/test_cuda*.c is one GPU suite (test_cuda, test_cuda_index, ...).
if(TARGET born_testutil AND NOT TARGET test_cuda)
  file(GLOB BORN_CUDA_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/backend/test_cuda*.c)
  set(BORN_CUDA_TEST_NAMES)
  foreach(src ${BORN_CUDA_TESTS})
    get_filename_component(name ${src} NAME_WE)
    list(APPEND BORN_CUDA_TEST_NAMES ${name})
    add_executable(${name} ${src})
    target_compile_options(${name} PRIVATE -Wall -Wextra -Wno-unused-parameter
                           $<$<BOOL:${BORN_WERROR}>:-Werror>)
    target_link_libraries(${name} PRIVATE born_testutil)
    if(TARGET born_cuda)
      add_dependencies(${name} born_cuda)
    endif()
    add_test(NAME ${name} COMMAND ${name} --jobs 1)
    set_tests_properties(${name} PROPERTIES TIMEOUT 600 LABELS cuda
      ENVIRONMENT "OMP_NUM_THREADS=2;BORN_CUDA_PLUGIN=${BORN_CUDA_PLUGIN_FILE}")
    if(BORN_SANITIZE)
      set_tests_properties(${name} PROPERTIES FAIL_REGULAR_EXPRESSION
        "ERROR: LeakSanitizer;ERROR: AddressSanitizer;runtime error:")
    endif()
  endforeach()
  add_custom_target(cuda_tests DEPENDS ${BORN_CUDA_TEST_NAMES})
endif()
