# bpf_object(<src.bpf.c> <outdir> <outvar> [extra clang flags...]): compiles one BPF C file into a CO-RE
# <outdir>/<name>.bpf.o with clang, against the committed vmlinux.h, and strips
# its DWARF (BTF stays). Header dependencies come from clang's depfile.

find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPF_STRIP NAMES llvm-strip llvm-strip-14 REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  set(BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(BPF_ARCH arm64)
else()
  message(FATAL_ERROR "no vmlinux.h for ${CMAKE_SYSTEM_PROCESSOR}")
endif()

# clang -target bpf does not search the host's system include dirs; add them
# (asm/types.h lives in the multiarch dir) as libbpf-bootstrap does.
execute_process(
  COMMAND sh -c "${BPF_CLANG} -v -E - </dev/null 2>&1 | sed -n '/<...> search starts here/,/End of search list/ s| \\(/.*\\)|-idirafter \\1|p'"
  OUTPUT_VARIABLE BPF_SYS_INCLUDES OUTPUT_STRIP_TRAILING_WHITESPACE)
separate_arguments(BPF_SYS_INCLUDES UNIX_COMMAND "${BPF_SYS_INCLUDES}")

set(BPF_CFLAGS -g -O2 -target bpf -D__TARGET_ARCH_${BPF_ARCH} -Wall -Werror -Wno-unused-function
    -I${PROJECT_SOURCE_DIR}/vmlinux/${BPF_ARCH} -I${PROJECT_SOURCE_DIR}/bpf/include ${BPF_SYS_INCLUDES})

function(bpf_object src outdir outvar)
  get_filename_component(name ${src} NAME_WE)
  get_filename_component(srcdir ${src} DIRECTORY)
  set(out ${outdir}/${name}.bpf.o)
  set(tmp ${outdir}/${name}.tmp.o)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${outdir}
    COMMAND ${BPF_CLANG} ${BPF_CFLAGS} ${ARGN} -I${srcdir} -MD -MF ${out}.d -c ${src} -o ${tmp}
    COMMAND ${BPF_STRIP} -g ${tmp} -o ${out}
    COMMAND ${CMAKE_COMMAND} -E remove ${tmp}
    DEPENDS ${src}
    DEPFILE ${out}.d
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)
  set(${outvar} ${out} PARENT_SCOPE)
endfunction()
