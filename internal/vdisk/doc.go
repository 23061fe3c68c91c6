// Package vdisk holds the types shared by the format packages (vhdx, vhd1,
// raw) and the root package vhd: the backing-file interface, extents,
// disk information, check findings, options and the error values.
//
// The root package re-exports these names, so users never import this
// package directly; the format packages use it to stay independent of
// each other and of the root package.
package vdisk
