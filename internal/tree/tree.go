// Package tree holds a rendered runit service definition: the files of one directory under
// sv_dir, and which of its directories are runit services to link into service_dir.
package tree

import "io/fs"

// File is one file of a tree. Path is slash-separated and relative to the tree's root.
type File struct {
	Path string
	Mode fs.FileMode
	Data []byte
}

// Service is a runit service directory inside a tree (Path "." for the root) and the
// name of its link in service_dir.
type Service struct {
	Path string
	Link string
}

// Tree is everything rundock writes for one service.
type Tree struct {
	Dir      string // directory name under sv_dir, e.g. docker-influxdb
	Files    []File
	Services []Service
	// Stub is a tree apply did not render: its index says the disk holds what this binary
	// renders from the same spec. Files have Path and Mode only; RecordKey is the record
	// key its announcer/run names. Nothing writes a stub.
	Stub      bool
	RecordKey string
}
