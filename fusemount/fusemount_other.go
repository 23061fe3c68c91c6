//go:build !linux

package fusemount

import (
	"errors"
	"fmt"
	"runtime"
)

// Server is a mounted disk file system; none can be made off Linux.
type Server struct{}

// Mount returns an error wrapping [errors.ErrUnsupported]: this package
// serves disks on Linux only.
func Mount(dir string, img Image, o *Options) (*Server, error) {
	return nil, fmt.Errorf("fusemount: not implemented on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

// Path returns "".
func (s *Server) Path() string { return "" }

// Wait returns at once.
func (s *Server) Wait() {}

// Unmount returns an error wrapping [errors.ErrUnsupported].
func (s *Server) Unmount() error {
	return fmt.Errorf("fusemount: not implemented on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
