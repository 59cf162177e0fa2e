// Package handlers turns bridge requests into calls on the guest: each
// handler decodes its body (a decode failure is InvalidJSON naming the
// message and field), makes one call on the Guest interface, and builds the
// response. Decisions, ordering and rollback live behind Guest, not here.
package handlers
