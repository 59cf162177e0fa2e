package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"
)

// QMP is a client of QEMU's machine protocol: one JSON object per line,
// a greeting first, then commands answered in order, with asynchronous
// events mixed in. Commands are serialised; events are kept so that
// WaitEvent can find ones that arrived while a command was running.
type QMP struct {
	conn net.Conn
	r    *bufio.Reader
	mu   sync.Mutex
	// events seen and not yet consumed by WaitEvent.
	events []qmpMessage
}

type qmpMessage struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	QMP   json.RawMessage `json:"QMP"`
}

// DialQMP connects to the VM's QMP socket and leaves capabilities
// negotiation mode.
func (v *VM) DialQMP(ctx context.Context) (*QMP, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", v.QMPPath)
	if err != nil {
		return nil, fmt.Errorf("dial qmp: %w", err)
	}
	q := &QMP{conn: conn, r: bufio.NewReader(conn)}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
		defer conn.SetDeadline(time.Time{})
	}
	greeting, err := q.read()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	if greeting.QMP == nil {
		conn.Close()
		return nil, fmt.Errorf("%w: no QMP greeting", ErrQMP)
	}
	if err := q.Execute(ctx, "qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

// Close closes the connection.
func (q *QMP) Close() error { return q.conn.Close() }

func (q *QMP) read() (qmpMessage, error) {
	line, err := q.r.ReadBytes('\n')
	if err != nil {
		return qmpMessage{}, fmt.Errorf("qmp read: %w", err)
	}
	var m qmpMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return qmpMessage{}, fmt.Errorf("%w: undecodable line %q: %w", ErrQMP, line, err)
	}
	return m, nil
}

// Execute runs one command and returns its error, if any.
func (q *QMP) Execute(ctx context.Context, command string, args any) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = q.conn.SetDeadline(dl)
		defer q.conn.SetDeadline(time.Time{})
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	for {
		m, err := q.read()
		if err != nil {
			return fmt.Errorf("qmp %s: %w", command, err)
		}
		if m.Event != "" {
			q.events = append(q.events, m)
			continue
		}
		if m.Error != nil {
			return fmt.Errorf("%w: %s: %s: %s", ErrQMP, command, m.Error.Class, m.Error.Desc)
		}
		return nil
	}
}

// WaitEvent waits for an event named name whose data satisfies match
// (nil matches any) and consumes it.
func (q *QMP) WaitEvent(ctx context.Context, name string, match func(json.RawMessage) bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	take := func() bool {
		for i, e := range q.events {
			if e.Event == name && (match == nil || match(e.Data)) {
				q.events = append(q.events[:i], q.events[i+1:]...)
				return true
			}
		}
		return false
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = q.conn.SetDeadline(dl)
		defer q.conn.SetDeadline(time.Time{})
	}
	for !take() {
		m, err := q.read()
		if err != nil {
			return fmt.Errorf("wait for %s: %w", name, err)
		}
		if m.Event != "" {
			q.events = append(q.events, m)
		}
	}
	return nil
}

// SCSIDisk is a raw image file hot-plugged as a scsi-hd on the VM's
// virtio-scsi controller (scsi0) at target 0 and Lun.
type SCSIDisk struct {
	ID       string // QEMU device id; the block node is ID+"-node"
	Image    string
	Lun      uint8
	ReadOnly bool
}

// HotplugSCSI adds the image as a block node and plugs a scsi-hd for it.
func (q *QMP) HotplugSCSI(ctx context.Context, d SCSIDisk) error {
	node := d.ID + "-node"
	err := q.Execute(ctx, "blockdev-add", map[string]any{
		"node-name": node, "driver": "raw", "read-only": d.ReadOnly,
		"file": map[string]any{"driver": "file", "filename": d.Image, "read-only": d.ReadOnly},
	})
	if err != nil {
		return err
	}
	err = q.Execute(ctx, "device_add", map[string]any{
		"driver": "scsi-hd", "id": d.ID, "bus": "scsi0.0", "scsi-id": 0, "lun": int(d.Lun), "drive": node,
	})
	if err != nil {
		_ = q.Execute(ctx, "blockdev-del", map[string]any{"node-name": node})
		return err
	}
	return nil
}

// UnplugSCSI removes the scsi-hd (waiting for QEMU's DEVICE_DELETED, which
// follows the guest's release of the device) and then its block node.
func (q *QMP) UnplugSCSI(ctx context.Context, d SCSIDisk) error {
	if err := q.Execute(ctx, "device_del", map[string]any{"id": d.ID}); err != nil {
		return err
	}
	err := q.WaitEvent(ctx, "DEVICE_DELETED", func(data json.RawMessage) bool {
		var ev struct {
			Device string `json:"device"`
		}
		return json.Unmarshal(data, &ev) == nil && ev.Device == d.ID
	})
	if err != nil {
		return err
	}
	return q.Execute(ctx, "blockdev-del", map[string]any{"node-name": d.ID + "-node"})
}
