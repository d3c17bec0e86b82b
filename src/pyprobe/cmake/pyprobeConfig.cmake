# pyprobe's CMake package: compile a project's BPF probes against the headers
# installed with pyprobe and generate their typed Python skeletons.
#
#   find_package(pyprobe REQUIRED)
#   pyprobe_add_probes(probes
#     SOURCES bpf/opencount.bpf.c
#     PACKAGE_DIR opencount          # where the .bpf.o and <name>_skel.py are installed
#     [INCLUDE_DIRS dir...] [DEFINES NAME=VALUE...])
#
# find_package finds this file without any -D inside a scikit-build-core build
# that has pyprobe among its build requirements (pyprobe's `cmake.prefix`
# entry point); elsewhere pass -Dpyprobe_DIR=$(pyprobe cmake-dir).
#
# Variables it sets: pyprobe_VERSION, pyprobe_INCLUDE_DIR (pyprobe/*.h, bpf/*.h,
# vmlinux/<arch>/vmlinux.h), pyprobe_BPF_ARCH (x86 or arm64), pyprobe_PYTHON
# (the interpreter that runs `python -m pyprobe gen skeleton`), PYPROBE_CLANG
# and PYPROBE_LLVM_STRIP (cache entries: set them to use other tools).
# PYPROBE_BPF_ARCH overrides the architecture taken from CMAKE_SYSTEM_PROCESSOR;
# PYPROBE_PYTHON names the interpreter to use.

if(CMAKE_VERSION VERSION_LESS 3.20)
  message(FATAL_ERROR "pyprobe: CMake ${CMAKE_VERSION} is too old; pyprobe_add_probes needs CMake 3.20 (DEPFILE)")
endif()
# find_package gives this file a policy scope of its own; the function keeps these.
cmake_policy(VERSION 3.20)
cmake_policy(SET CMP0116 NEW)  # DEPFILE paths are made relative to the binary dir

get_filename_component(_pyprobe_package_dir "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
get_filename_component(_pyprobe_site_dir "${_pyprobe_package_dir}/.." ABSOLUTE)
set(pyprobe_INCLUDE_DIR "${_pyprobe_package_dir}/include")

# --- the BPF target architecture ---------------------------------------------------
if(PYPROBE_BPF_ARCH)
  set(pyprobe_BPF_ARCH "${PYPROBE_BPF_ARCH}")
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|x64)$")
  set(pyprobe_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(pyprobe_BPF_ARCH arm64)
else()
  set(pyprobe_BPF_ARCH "${CMAKE_SYSTEM_PROCESSOR}")
endif()
if(NOT EXISTS "${pyprobe_INCLUDE_DIR}/vmlinux/${pyprobe_BPF_ARCH}/vmlinux.h")
  file(GLOB _pyprobe_arches RELATIVE "${pyprobe_INCLUDE_DIR}/vmlinux" "${pyprobe_INCLUDE_DIR}/vmlinux/*")
  string(REPLACE ";" ", " _pyprobe_arches "${_pyprobe_arches}")
  message(FATAL_ERROR
    "pyprobe: no vmlinux.h for the BPF architecture '${pyprobe_BPF_ARCH}' "
    "(CMAKE_SYSTEM_PROCESSOR '${CMAKE_SYSTEM_PROCESSOR}'): pyprobe ${pyprobe_VERSION} at "
    "${_pyprobe_package_dir} has vmlinux.h for: ${_pyprobe_arches}. "
    "Set PYPROBE_BPF_ARCH to one of them.")
endif()
foreach(_pyprobe_header pyprobe/common.h bpf/bpf_helpers.h)
  if(NOT EXISTS "${pyprobe_INCLUDE_DIR}/${_pyprobe_header}")
      message(FATAL_ERROR "pyprobe: ${pyprobe_INCLUDE_DIR}/${_pyprobe_header} is missing; reinstall pyprobe")
  endif()
endforeach()

# --- clang and llvm-strip -------------------------------------------------------
set(_pyprobe_llvm_versions 20 19 18 17 16 15 14)
set(_pyprobe_clang_names clang)
set(_pyprobe_strip_names llvm-strip)
foreach(_v ${_pyprobe_llvm_versions})
  list(APPEND _pyprobe_clang_names clang-${_v})
  list(APPEND _pyprobe_strip_names llvm-strip-${_v})
endforeach()
find_program(PYPROBE_CLANG NAMES ${_pyprobe_clang_names} DOC "clang that compiles BPF probes (-target bpf)")
if(NOT PYPROBE_CLANG)
  message(FATAL_ERROR
    "pyprobe: clang not found; it compiles the BPF probes. Install it (Debian/Ubuntu: "
    "apt-get install clang llvm) or set PYPROBE_CLANG to its path.")
endif()
find_program(PYPROBE_LLVM_STRIP NAMES ${_pyprobe_strip_names} DOC "llvm-strip that removes DWARF from BPF objects")
if(NOT PYPROBE_LLVM_STRIP)
  message(FATAL_ERROR
    "pyprobe: llvm-strip not found; it strips DWARF from the BPF objects. Install it (Debian/Ubuntu: "
    "apt-get install llvm) or set PYPROBE_LLVM_STRIP to its path.")
endif()

# clang -target bpf does not search the host's system include dirs; they come
# after everything else (-idirafter), as in libbpf-bootstrap (asm/types.h lives
# in the multiarch dir).
execute_process(
  COMMAND "${PYPROBE_CLANG}" -v -E -x c /dev/null -o /dev/null
  ERROR_VARIABLE _pyprobe_clang_v OUTPUT_QUIET RESULT_VARIABLE _pyprobe_rc)
set(pyprobe_SYSTEM_INCLUDES)
if(_pyprobe_rc EQUAL 0)
  string(REPLACE "\n" ";" _pyprobe_lines "${_pyprobe_clang_v}")
  set(_pyprobe_in_list FALSE)
  foreach(_pyprobe_line IN LISTS _pyprobe_lines)
    if(_pyprobe_line MATCHES "^#include <...> search starts here:")
      set(_pyprobe_in_list TRUE)
    elseif(_pyprobe_line MATCHES "^End of search list")
      set(_pyprobe_in_list FALSE)
    elseif(_pyprobe_in_list AND _pyprobe_line MATCHES "^ (/.*)$")
      list(APPEND pyprobe_SYSTEM_INCLUDES -idirafter "${CMAKE_MATCH_1}")
    endif()
  endforeach()
endif()

# --- the Python that has this pyprobe ---------------------------------------------
# Candidates: PYPROBE_PYTHON, then the interpreter the project found
# (scikit-build-core sets Python_EXECUTABLE to the build's own), then the one of
# the environment this package is installed in. The first that imports pyprobe
# from this very directory runs the skeleton generator.
function(_pyprobe_find_python outvar)
  set(candidates)
  foreach(var PYPROBE_PYTHON Python_EXECUTABLE Python3_EXECUTABLE)
    if(${var})
      list(APPEND candidates "${${var}}")
    endif()
  endforeach()
  # <prefix>/lib/pythonX.Y/site-packages/pyprobe -> <prefix>/bin/python3
  get_filename_component(prefix "${_pyprobe_site_dir}/../../.." ABSOLUTE)
  foreach(name python3 python)
    if(EXISTS "${prefix}/bin/${name}")
      list(APPEND candidates "${prefix}/bin/${name}")
    endif()
  endforeach()
  find_program(PYPROBE_PATH_PYTHON NAMES python3 python DOC "the python3 on PATH, pyprobe's last choice")
  mark_as_advanced(PYPROBE_PATH_PYTHON)
  if(PYPROBE_PATH_PYTHON)
    list(APPEND candidates "${PYPROBE_PATH_PYTHON}")
  endif()
  list(REMOVE_DUPLICATES candidates)
  file(REAL_PATH "${_pyprobe_package_dir}" want)
  set(tried)
  foreach(python IN LISTS candidates)
    execute_process(
      COMMAND "${python}" -c "import importlib.util as u, os; s = u.find_spec('pyprobe'); print(os.path.realpath(s.submodule_search_locations[0]) if s else '')"
      OUTPUT_VARIABLE found OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
    if(rc EQUAL 0 AND found STREQUAL want)
      set(${outvar} "${python}" PARENT_SCOPE)
      return()
    endif()
    if(found STREQUAL "")
      set(found "no pyprobe")
    endif()
    list(APPEND tried "${python} (${found})")
  endforeach()
  string(REPLACE ";" ", " tried "${tried}")
  message(FATAL_ERROR
    "pyprobe: no Python interpreter imports pyprobe from ${_pyprobe_package_dir} (tried: ${tried}); "
    "set PYPROBE_PYTHON to the interpreter of the environment pyprobe is installed in.")
endfunction()
if(NOT pyprobe_PYTHON)
  _pyprobe_find_python(pyprobe_PYTHON)
endif()
message(STATUS "pyprobe ${pyprobe_VERSION}: ${_pyprobe_package_dir} (BPF arch ${pyprobe_BPF_ARCH}, "
               "clang ${PYPROBE_CLANG}, skeletons by ${pyprobe_PYTHON})")

# The flags of `pyprobe build` (pyprobe.compiler): the project's -I/-D come before these;
# pyprobe's fallback <linux/errno.h> comes last, for machines without the kernel's UAPI headers.
set(_pyprobe_cflags -target bpf -D__TARGET_ARCH_${pyprobe_BPF_ARCH}
    "-I${pyprobe_INCLUDE_DIR}/vmlinux/${pyprobe_BPF_ARCH}" "-I${pyprobe_INCLUDE_DIR}" ${pyprobe_SYSTEM_INCLUDES})
if(IS_DIRECTORY "${pyprobe_INCLUDE_DIR}/compat")
  list(APPEND _pyprobe_cflags -idirafter "${pyprobe_INCLUDE_DIR}/compat")
endif()

# pyprobe_add_probes(<target> SOURCES <src.bpf.c>... PACKAGE_DIR <dir>
#                    [INCLUDE_DIRS <dir>...] [DEFINES <NAME[=VALUE]>...])
#
# Adds the custom target <target> (built by default) that compiles each source
# into a CO-RE <name>.bpf.o (clang -g -O2 -target bpf, DWARF stripped, BTF kept;
# header dependencies from clang's depfile) and writes its typed skeleton module
# <name>_skel.py (`python -m pyprobe gen skeleton`, the object embedded), <name>
# being the file name without .bpf.c. Both land in
# ${CMAKE_CURRENT_BINARY_DIR}/<target>/ and are installed into PACKAGE_DIR, a
# directory relative to the install prefix (the wheel's root under
# scikit-build-core: the Python package's import path, e.g. `mytool`).
# Relative SOURCES and INCLUDE_DIRS are taken from the current source dir;
# each source's own directory and INCLUDE_DIRS come before pyprobe's headers.
# The target's properties PYPROBE_OBJECTS and PYPROBE_SKELETONS list the files
# it builds.
function(pyprobe_add_probes target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "PACKAGE_DIR" "SOURCES;INCLUDE_DIRS;DEFINES")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "pyprobe_add_probes(${target}): unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "pyprobe_add_probes(${target}): SOURCES is empty; name the .bpf.c files to compile")
  endif()
  if(NOT DEFINED arg_PACKAGE_DIR OR arg_PACKAGE_DIR STREQUAL "")
    message(FATAL_ERROR
      "pyprobe_add_probes(${target}): PACKAGE_DIR is missing; name the Python package directory "
      "(relative to the install prefix) the objects and skeletons go to")
  endif()
  if(TARGET ${target})
    message(FATAL_ERROR "pyprobe_add_probes(${target}): a target named ${target} already exists")
  endif()

  set(outdir "${CMAKE_CURRENT_BINARY_DIR}/${target}")
  set(extra)
  foreach(dir IN LISTS arg_INCLUDE_DIRS)
    get_filename_component(dir "${dir}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND extra "-I${dir}")
  endforeach()
  foreach(define IN LISTS arg_DEFINES)
    list(APPEND extra "-D${define}")
  endforeach()

  set(objects)
  set(skeletons)
  set(names)
  foreach(src IN LISTS arg_SOURCES)
    get_filename_component(src "${src}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    if(NOT EXISTS "${src}")
      message(FATAL_ERROR "pyprobe_add_probes(${target}): no such source: ${src}")
    endif()
    get_filename_component(file "${src}" NAME)
    string(REGEX REPLACE "(\\.bpf)?\\.c$" "" name "${file}")
    if(NOT name MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
      message(FATAL_ERROR
        "pyprobe_add_probes(${target}): ${file}: '${name}' cannot name a Python module "
        "(<name>_skel.py); rename the source to <identifier>.bpf.c")
    endif()
    if(name IN_LIST names)
      message(FATAL_ERROR "pyprobe_add_probes(${target}): two sources make ${name}.bpf.o")
    endif()
    list(APPEND names "${name}")
    get_filename_component(srcdir "${src}" DIRECTORY)
    set(obj "${outdir}/${name}.bpf.o")
    set(tmp "${outdir}/${name}.tmp.o")
    set(skel "${outdir}/${name}_skel.py")
    add_custom_command(
      OUTPUT "${obj}"
      COMMAND "${CMAKE_COMMAND}" -E make_directory "${outdir}"
      COMMAND "${PYPROBE_CLANG}" -g -O2 -Wall "-I${srcdir}" ${extra} ${_pyprobe_cflags} -MD -MF "${obj}.d" -MT "${obj}"
              -c "${src}" -o "${tmp}"
      COMMAND "${PYPROBE_LLVM_STRIP}" -g "${tmp}" -o "${obj}"
      COMMAND "${CMAKE_COMMAND}" -E remove "${tmp}"
      DEPENDS "${src}"
      DEPFILE "${obj}.d"
      COMMENT "BPF ${name}.bpf.o"
      VERBATIM)
    add_custom_command(
      OUTPUT "${skel}"
      COMMAND "${pyprobe_PYTHON}" -m pyprobe gen skeleton "${obj}" -o "${skel}"
      DEPENDS "${obj}"
      COMMENT "pyprobe skeleton ${name}_skel.py"
      VERBATIM)
    list(APPEND objects "${obj}")
    list(APPEND skeletons "${skel}")
  endforeach()

  add_custom_target(${target} ALL DEPENDS ${objects} ${skeletons})
  set_target_properties(${target} PROPERTIES PYPROBE_OBJECTS "${objects}" PYPROBE_SKELETONS "${skeletons}")
  install(FILES ${objects} ${skeletons} DESTINATION "${arg_PACKAGE_DIR}")
endfunction()

