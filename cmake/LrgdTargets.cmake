# Warning and sanitizer flags for lrgd's own targets only (never for llama.cpp's).
function(lrgd_target_flags target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
    -Wnull-dereference -Wimplicit-fallthrough
    # GCC 12 reports std::string concatenation as overlapping memcpy (GCC bug 105329).
    $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>)
  if(LRGD_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(LRGD_FUZZ)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  elseif(LRGD_SANITIZE)
    # ASan instrumentation makes GCC 12 report false maybe-uninitialized warnings in libstdc++.
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# lrgd_library(name SOURCES ... DEPS ...): one library per concern, public headers in include/.
function(lrgd_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  lrgd_target_flags(${name})
endfunction()

# lrgd_test(name SOURCES ... DEPS ... [LABELS ...] [SERIAL])
# SERIAL: never run beside another test (model runs that use every core: two OpenMP
# thread pools on the same cores slow each other down many times over).
function(lrgd_test name)
  cmake_parse_arguments(ARG "SERIAL" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/common)
  target_compile_definitions(${name} PRIVATE
    LRGD_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    LRGD_SHARED_DATA_DIR="${PROJECT_SOURCE_DIR}/../shared/data"
    LRGD_VOCAB_DIR="${LRGD_VOCAB_DIR}"
    LRGD_LLAMA_BIN_DIR="${LRGD_LLAMA_BIN_DIR}"
    LRGD_CLI="$<TARGET_FILE:lrgd>")
  lrgd_target_flags(${name})
  # Escaped so that several labels reach the property as one list.
  string(REPLACE ";" "\\;" labels "${ARG_LABELS}")
  if(ARG_SERIAL)
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${labels}" RUN_SERIAL TRUE)
  else()
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${labels}")
  endif()
endfunction()
