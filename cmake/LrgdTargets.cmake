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

# lrgd_library(name [INTERFACE] SOURCES ... [HEADERS dir] PUBLIC_DEPS ... PRIVATE_DEPS ...): one
# library per concern. Its public headers are its own folder, HEADERS (default: include/ beside
# the CMakeLists.txt, holding lrgd/*.h), so a header of another library is reachable only by
# linking that library: an include that bypasses the link graph fails to compile. INTERFACE: a
# header-only library (no SOURCES, no PRIVATE_DEPS); its headers are compiled, with lrgd's
# warnings, in the libraries that link it.
function(lrgd_library name)
  cmake_parse_arguments(ARG "INTERFACE" "HEADERS" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  if(NOT ARG_HEADERS)
    set(ARG_HEADERS include)
  endif()
  if(ARG_INTERFACE)
    if(ARG_SOURCES OR ARG_PRIVATE_DEPS)
      message(FATAL_ERROR "lrgd_library(${name} INTERFACE): a header-only library has no SOURCES or PRIVATE_DEPS")
    endif()
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/${ARG_HEADERS})
    target_link_libraries(${name} INTERFACE ${ARG_PUBLIC_DEPS})
    set_property(GLOBAL APPEND PROPERTY LRGD_LIBRARIES ${name})
    return()
  endif()
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/${ARG_HEADERS}
                             PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  lrgd_target_flags(${name})
  set_property(GLOBAL APPEND PROPERTY LRGD_LIBRARIES ${name})
endfunction()

# Writes <build>/library-graph.txt, one line per lrgd library (and lrgd_cli): "name|public
# deps|private deps", in the order the libraries are defined. scripts/design_graph.py turns it
# into docs/design.md's dependency block; the DesignGraph test fails when that block is stale.
function(lrgd_write_library_graph)
  get_property(libraries GLOBAL PROPERTY LRGD_LIBRARIES)
  list(APPEND libraries lrgd_cli)
  set(lines "")
  foreach(lib IN LISTS libraries)
    get_target_property(all ${lib} LINK_LIBRARIES)
    get_target_property(public ${lib} INTERFACE_LINK_LIBRARIES)
    if(NOT all)
      set(all "")
    endif()
    if(NOT public)
      set(public "")
    endif()
    list(FILTER public EXCLUDE REGEX "^\\$<LINK_ONLY:")
    set(private ${all})
    if(public)
      list(REMOVE_ITEM private ${public})
    endif()
    list(REMOVE_DUPLICATES public)
    list(REMOVE_DUPLICATES private)
    list(JOIN public "," public_text)
    list(JOIN private "," private_text)
    string(APPEND lines "${lib}|${public_text}|${private_text}\n")
  endforeach()
  file(WRITE ${CMAKE_BINARY_DIR}/library-graph.txt "${lines}")
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
    LRGD_CLI="$<TARGET_FILE:lrgd>"
    LRGD_TEST_CACHE_DIR="${CMAKE_BINARY_DIR}/test-cache")
  lrgd_target_flags(${name})
  # Speed tiers: a suite that loads no model, starts no server and is not marked slow is
  # `fast` (the whole tier runs in about a minute on 2 cores: `ctest -L fast`). Each test
  # has its own timeout, so one hung test fails alone and soon.
  set(labels ${ARG_LABELS})
  set(timeout 600)
  if(NOT labels MATCHES "(^|;)(model|server|real_model|docs|slow)(;|$)")
    list(APPEND labels fast)
    set(timeout 120)
  endif()
  # One label joined by dots ("eval.model", "data.fast"): gtest_discover_tests loses the
  # escaping of a list-valued property (the second label became a property name), and
  # ctest's -L/-LE take regular expressions, so `-L fast` and `-LE model` select as before.
  list(JOIN labels "." label)
  set(serial)
  if(ARG_SERIAL)
    set(serial RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
                       PROPERTIES LABELS ${label} TIMEOUT ${timeout} FIXTURES_REQUIRED test_cache ${serial})
endfunction()
