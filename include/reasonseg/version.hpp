// Library version and the location of the data files installed with it.
#pragma once
#include <string>

namespace reasonseg {

// "MAJOR.MINOR.PATCH" of the library that is loaded (which may differ from the headers compiled against).
const char* version();

// The directory holding the data installed with the library: tokenizer.model (LLaMA's vocabulary,
// used by random-weight presets), models/tiny-lisa-a (the tiny random-weight test model) and
// examples/dog.png. Resolved at run time relative to the loaded library (<libdir>/../share/reasonseg
// installed, <build>/share/reasonseg in a build tree), so a moved installation keeps working; the
// environment variable REASONSEG_DATA_DIR overrides it. Throws reasonseg::Error naming the places
// searched when none exists.
std::string data_dir();

// data_dir() + "/" + relative, throwing reasonseg::Error when that file or directory does not exist.
std::string data_path(const std::string& relative);

}  // namespace reasonseg
