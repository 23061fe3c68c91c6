package vhdx

import "testing"

// TestWin32ExtendedPath: absolute_win32_path is \\?\ plus a drive
// letter or UNC share (FORMATS.md 3.9), also when the parent's path was
// given in extended-length form, which filepath.Abs keeps on Windows
// and which used to become \\?\UNC\?\C:\....
func TestWin32ExtendedPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{`C:\dir\p.vhdx`, `\\?\C:\dir\p.vhdx`, true},
		{`d:\p.vhdx`, `\\?\d:\p.vhdx`, true},
		{`\\srv\share\p.vhdx`, `\\?\UNC\srv\share\p.vhdx`, true},
		{`\\?\C:\dir\p.vhdx`, `\\?\C:\dir\p.vhdx`, true},
		{`\\?\UNC\srv\share\p.vhdx`, `\\?\UNC\srv\share\p.vhdx`, true},
		{`\\?\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\p.vhdx`, "", false},
		{`\\.\C:\p.vhdx`, "", false},
		{`\home\u\p.vhdx`, "", false},
		{`C:p.vhdx`, "", false},
		{`1:\p.vhdx`, "", false},
		{`\\?\UNC\`, `\\?\UNC\`, false},
		{"", "", false},
	} {
		got, ok := win32ExtendedPath(tc.in)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("win32ExtendedPath(%q) = %q, %t; want %q, %t",
				tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
