// Package version holds the build's version, set by the Makefile with -ldflags.
package version

// Version is the release or git description of this build; "dev" when built without make.
var Version = "dev"
