package network

import "errors"

// Sentinel errors; callers match them with errors.Is. Errors returned by
// Manager carry them inside a *prot.Error with the HRESULT to answer with.
var (
	// ErrDuplicateAdapter: the namespace already has an adapter with this id.
	ErrDuplicateAdapter = errors.New("network adapter already added")
	// ErrNamespaceNotFound: no record exists for the namespace id.
	ErrNamespaceNotFound = errors.New("network namespace not found")
	// ErrAlreadyBound: the namespace is already bound to another process or
	// to the host namespace.
	ErrAlreadyBound = errors.New("network namespace already bound")
	// ErrInvalidRequest: a required field (namespace id, pid) is missing or
	// malformed.
	ErrInvalidRequest = errors.New("invalid network request")
)
