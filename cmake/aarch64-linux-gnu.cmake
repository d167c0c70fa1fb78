# CMake toolchain file for 64-bit ARM Linux with Debian's cross compilers
# (gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu). There is no sysroot: the
# target's libraries come from Debian multiarch packages installed on the
# build machine (zlib1g-dev:arm64 puts libz in /usr/lib/aarch64-linux-gnu,
# which the cross compilers and CMake's find_library search).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
