package runtime

import (
	"fmt"
	"regexp"
)

// MaxIDLength is the longest accepted container id.
const MaxIDLength = 76

// idPattern is containerd's identifier rule: alphanumeric components joined
// by single '.', '_' or '-'. It admits no '/', no leading separator and no
// "..", so an id is always a single safe path element.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`)

// ValidateID checks that id is usable as a container id and as a path
// element. The error wraps ErrInvalidContainerID.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidContainerID)
	case len(id) > MaxIDLength:
		return fmt.Errorf("%w: %q is longer than %d characters", ErrInvalidContainerID, id, MaxIDLength)
	case !idPattern.MatchString(id):
		return fmt.Errorf("%w: %q must match %s", ErrInvalidContainerID, id, idPattern)
	}
	return nil
}
