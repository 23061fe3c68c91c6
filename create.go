package vhd

import (
	"fmt"
	"path/filepath"
	"strings"
)

// FormatFromPath returns the format a file name's extension asks for:
// .vhdx and .avhdx are VHDX, .vhd and .avhd are VHD, .img, .raw and .bin
// are raw. Other names give [FormatUnknown].
func FormatFromPath(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".vhdx", ".avhdx":
		return FormatVHDX
	case ".vhd", ".avhd":
		return FormatVHD
	case ".img", ".raw", ".bin":
		return FormatRaw
	}
	return FormatUnknown
}

// Create creates a new disk at path, which must not exist. format
// [FormatUnknown] takes the format from the extension of path (see
// [FormatFromPath]). opts gives the size, type (dynamic by default for
// VHD and VHDX), block and sector sizes, and the parent of a
// differencing disk; a differencing disk takes its size from the
// parent. If creation fails, nothing is left at path.
func Create(path string, format Format, opts *CreateOptions) (Disk, error) {
	if format == FormatUnknown {
		format = FormatFromPath(path)
		if format == FormatUnknown {
			return nil, fmt.Errorf("create %s: %w: no format given and the "+
				"extension names none (use .vhdx, .vhd or .img)", path, ErrInvalidArgument)
		}
	}
	if opts == nil {
		return nil, fmt.Errorf("create %s: %w: no options", path, ErrInvalidArgument)
	}
	drv, err := driverFor(format)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if opts.Parent != "" {
		// A parent of another format would fail inside the format
		// package as a corrupt file; say what is really wrong.
		pf, err := DetectFile(opts.Parent)
		if err != nil {
			return nil, fmt.Errorf("create %s: parent: %w", path, err)
		}
		if pf != format {
			return nil, fmt.Errorf("create %s: %w: the parent of a %v disk "+
				"must be a %v disk; %s is %v", path, ErrInvalidArgument,
				format, format, opts.Parent, pf)
		}
	}
	return drv.create(path, opts)
}
