package vdisk

import (
	"errors"
	"fmt"
)

// Error values shared by every format. Test for them with [errors.Is].
var (
	// ErrCorrupt reports a structure that violates its format's rules.
	ErrCorrupt = errors.New("vhd: corrupt image")

	// ErrReadOnly reports a write to a disk opened read-only.
	ErrReadOnly = errors.New("vhd: disk is read-only")

	// ErrParentNotFound reports a differencing disk whose parent could not
	// be located with the paths and policy given.
	ErrParentNotFound = errors.New("vhd: parent disk not found")

	// ErrParentMismatch reports a parent that was found but whose identity
	// (VHDX DataWriteGuid, VHD Unique Id) or geometry does not match the
	// child's record of it.
	ErrParentMismatch = errors.New("vhd: parent does not match child")

	// ErrOutOfRange reports an access beyond the virtual size.
	ErrOutOfRange = errors.New("vhd: offset out of range")

	// ErrInvalidArgument reports an option or parameter outside the
	// format's limits (block size, sector size, virtual size...).
	ErrInvalidArgument = errors.New("vhd: invalid argument")

	// ErrClosed reports use of a disk after Close.
	ErrClosed = errors.New("vhd: disk is closed")

	// ErrUnknownFormat reports content that no format recognises where a
	// format was required.
	ErrUnknownFormat = errors.New("vhd: unknown disk format")
)

// CorruptError describes a structure that violates its format's rules. It
// matches [ErrCorrupt] under [errors.Is].
type CorruptError struct {
	Format    string // "vhd", "vhdx"
	Structure string // "header 1", "region table 2", "BAT", "log entry"...
	Field     string // field name from the specification, may be empty
	Offset    int64  // file offset of the structure or field; -1 if unknown
	Reason    string // what is wrong, lower case
	Err       error  // underlying cause, may be nil
}

func (e *CorruptError) Error() string {
	s := e.Format + ": corrupt " + e.Structure
	if e.Field != "" {
		s += " field " + e.Field
	}
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at byte 0x%x", e.Offset)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is [ErrCorrupt].
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the underlying cause.
func (e *CorruptError) Unwrap() error { return e.Err }

// Corruptf is shorthand for a [CorruptError] with a formatted reason.
func Corruptf(format, structure, field string, off int64, reason string, args ...any) error {
	return &CorruptError{
		Format:    format,
		Structure: structure,
		Field:     field,
		Offset:    off,
		Reason:    fmt.Sprintf(reason, args...),
	}
}

// Unsupportedf returns an error wrapping [errors.ErrUnsupported] that says
// what is not supported.
func Unsupportedf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errors.ErrUnsupported)
}
