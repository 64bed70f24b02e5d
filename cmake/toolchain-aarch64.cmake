# cmake/toolchain-aarch64.cmake — cross-compiles born for 64-bit ARM Linux with Debian's cross
# compiler (gcc-aarch64-linux-gnu) and runs what it builds under qemu-user, so that CTest runs
# the aarch64 unit tests (and with them the NEON kernels) on an x86-64 machine:
#
#   bash scripts/deps.sh cross          # or: make cross-aarch64, which does all of this
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake -DBORN_CUDA=OFF
#   cmake --build build-aarch64 && (cd build-aarch64 && ctest)
#
# Where the arm64 libraries come from (what scripts/deps.sh cross installs):
#   - jansson, OpenSSL, zlib, and Criterion's own dependencies: Debian multiarch packages
#     (libjansson-dev:arm64 ...), in /usr/lib/aarch64-linux-gnu with their headers in /usr/include
#     and /usr/include/aarch64-linux-gnu, which the Debian cross compiler already searches: the
#     sysroot is the root itself;
#   - Criterion: its arm64 packages cannot be installed beside the amd64 ones (libnanomsg5 is not
#     Multi-Arch), so they are unpacked into BORN_CROSS_CRITERION (/opt/born-cross-aarch64 unless
#     the environment says otherwise), with a pkg-config file of their own.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(BORN_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${BORN_CROSS_TRIPLE}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${BORN_CROSS_TRIPLE})

if(DEFINED ENV{BORN_CROSS_CRITERION})
  set(BORN_CROSS_CRITERION $ENV{BORN_CROSS_CRITERION})
else()
  set(BORN_CROSS_CRITERION /opt/born-cross-aarch64)
endif()
set(BORN_CROSS_CRITERION_LIB ${BORN_CROSS_CRITERION}/usr/lib/${BORN_CROSS_TRIPLE})

# pkg-config for the target: Debian's wrapper reads only the arm64 .pc files; PKG_CONFIG_PATH adds
# the unpacked Criterion's.
find_program(BORN_CROSS_PKG_CONFIG ${BORN_CROSS_TRIPLE}-pkg-config)
if(BORN_CROSS_PKG_CONFIG)
  set(PKG_CONFIG_EXECUTABLE ${BORN_CROSS_PKG_CONFIG} CACHE FILEPATH "pkg-config for aarch64")
else()
  set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${BORN_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig")
endif()
set(ENV{PKG_CONFIG_PATH} "${BORN_CROSS_CRITERION_LIB}/pkgconfig")

# Libraries from the cross toolchain's /usr/aarch64-linux-gnu and the multiarch directories of
# the root; programs (python, nvcc) from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${BORN_CROSS_TRIPLE} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# libcriterion.so needs libnanomsg.so.5, which the linker finds only when told where.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${BORN_CROSS_CRITERION_LIB}")

# add_test with a target as its command (so CTest) runs the aarch64 executables through
# qemu-user, with the dynamic loader and libc of Debian multiarch (libc6:arm64; not -L with the
# cross toolchain's copy, whose loader does not match the multiarch libc the other libraries pull
# in) and -E adding the unpacked Criterion to the guest's library path. Criterion starts each test
# by executing the test program again, which needs qemu registered with binfmt_misc (deps.sh).
find_program(BORN_CROSS_QEMU NAMES qemu-aarch64 qemu-aarch64-static)
if(BORN_CROSS_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${BORN_CROSS_QEMU} -E LD_LIBRARY_PATH=${BORN_CROSS_CRITERION_LIB})
endif()
