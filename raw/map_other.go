//go:build !linux

package raw

import "github.com/vhdkit/vhd/internal/vdisk"

// mapHoles reports nothing on this platform; the caller then treats the
// whole range as data.
func mapHoles(f vdisk.File, start, end int64) ([]vdisk.Extent, error) {
	return nil, nil
}
