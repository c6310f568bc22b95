# embed.cmake - turns a text file into a C array, so that a program carries
# the file instead of reading it from the source tree at run time.
#
#   cmake -DIN=repl.lua -DOUT=repl_lua.h -DNAME=repl_lua -P embed.cmake
#
# A byte array rather than a string literal: ISO C only promises string
# literals of 4095 characters, and -Wpedantic -Werror holds us to that.
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# Sixteen bytes a line keeps the generated file readable in a debugger.
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
get_filename_component(src "${IN}" NAME)
file(WRITE "${OUT}"
     "/* Generated from ${src} by embed.cmake: do not edit. */\n"
     "static const char ${NAME}[] = {\n${bytes}0x00};\n")
