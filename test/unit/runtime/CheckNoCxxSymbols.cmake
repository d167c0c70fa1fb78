# cmake -DNM=<nm> -DARCHIVE=<library.a> -P CheckNoCxxSymbols.cmake
# Fails if the archive refers to anything of the C++ runtime: mangled names
# (_Z...), the C++ ABI (__cxa_*, __gxx_*) or the unwinder (_Unwind_*), any of
# which would force C programs linking it to link libstdc++.
execute_process(COMMAND "${NM}" -u "${ARCHIVE}"
                OUTPUT_VARIABLE undefined ERROR_VARIABLE errors RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} -u ${ARCHIVE} failed (${rc}): ${errors}")
endif()
# Every object of the reader allocates, so an output without malloc means
# nm's format is not what this script reads, not that the archive is clean.
if(NOT undefined MATCHES "U malloc\n")
  message(FATAL_ERROR "no 'U malloc' in the output of ${NM} -u ${ARCHIVE}:\n${undefined}")
endif()
string(REGEX MATCHALL "U (_Z|__cxa|__gxx|_Unwind)[^\n]*" cxx "${undefined}")
if(cxx)
  list(REMOVE_DUPLICATES cxx)
  list(JOIN cxx "\n  " cxx)
  message(FATAL_ERROR "${ARCHIVE} needs the C++ runtime:\n  ${cxx}")
endif()
message(STATUS "${ARCHIVE}: no C++ runtime symbols")
