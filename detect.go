package vhd

import (
	"bytes"
	"io"
)

// Signatures that identify a format by content (FORMATS.md 2.1, 3.2).
var (
	vhdxSignature = []byte("vhdxfile") // file type identifier at 0
	vhdCookie     = []byte("conectix") // VHD footer cookie
)

// Detect identifies the format of the content of r, which holds size
// bytes. The name of the file plays no part:
//
//   - VHDX: "vhdxfile" at offset 0 (FORMATS.md 3.2);
//   - VHD: the footer cookie "conectix" at offset 0 (the footer copy of a
//     dynamic or differencing disk), or at the start of the last 512
//     bytes (every VHD), or of the last 511 bytes (pre-2004 Virtual PC
//     footers, FORMATS.md 2.1);
//   - anything else is a raw image.
//
// Detect returns an error only when r cannot be read.
func Detect(r io.ReaderAt, size int64) (Format, error) {
	var sig [8]byte
	has := func(off int64, want []byte) (bool, error) {
		if off < 0 || off+int64(len(want)) > size {
			return false, nil
		}
		n, err := r.ReadAt(sig[:len(want)], off)
		if n == len(want) {
			return bytes.Equal(sig[:n], want), nil
		}
		if err == io.EOF {
			return false, nil
		}
		return false, err
	}
	checks := []struct {
		off  int64
		want []byte
		f    Format
	}{
		{0, vhdxSignature, FormatVHDX},
		{0, vhdCookie, FormatVHD},
		{size - 512, vhdCookie, FormatVHD},
		{size - 511, vhdCookie, FormatVHD},
	}
	for _, c := range checks {
		ok, err := has(c.off, c.want)
		if err != nil {
			return FormatUnknown, err
		}
		if ok {
			return c.f, nil
		}
	}
	return FormatRaw, nil
}
