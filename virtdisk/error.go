package virtdisk

// Error records a failed VirtDisk call: the function, the disk's path
// when known, and the Win32 error (a syscall.Errno on Windows).
type Error struct {
	Op   string
	Path string
	Err  error
}

func (e *Error) Error() string {
	s := "virtdisk: " + e.Op
	if e.Path != "" {
		s += " " + e.Path
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the Win32 error.
func (e *Error) Unwrap() error { return e.Err }
