// Package moddep reads a kernel's modules.dep and computes a load order in
// which every module comes after the modules it depends on.
//
// It is shared by the image builder (which picks a set of modules and
// copies them with a trimmed modules.dep into the image) and by init (which
// loads what the image carries, in that order, with finit_module).
package moddep
