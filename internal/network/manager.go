package network

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netns"

	"github.com/opengcs/opengcs/internal/logging"
	"github.com/opengcs/opengcs/internal/network/ifname"
	"github.com/opengcs/opengcs/internal/network/netconf"
	"github.com/opengcs/opengcs/service/gcs/prot"
)

// DefaultResolveTimeout bounds the wait for a NIC's interface to appear.
const DefaultResolveTimeout = 5 * time.Second

// Resolver finds the interface name of the NIC with a VMBus instance id.
// ifname.Sysfs is the production implementation.
type Resolver interface {
	InterfaceName(ctx context.Context, id string, vpci bool) (string, error)
}

// Options configure a Manager. The zero value is the production setup.
type Options struct {
	// Resolver maps adapter ids to interface names; sysfs at /sys if nil.
	Resolver Resolver
	// RootNetNSPath names the namespace in which NICs appear (a
	// /proc/<pid>/ns/net path or a bind mount of one); the calling thread's
	// namespace if empty.
	RootNetNSPath string
	// ResolveTimeout bounds one interface lookup; DefaultResolveTimeout if 0.
	ResolveTimeout time.Duration
	// DHCP is the client run for adapters without addresses.
	DHCP netconf.DHCPClient
	// Log receives the manager's lines; nil discards them.
	Log *logrus.Entry
}

// Manager holds the namespace records. It is safe for concurrent use.
type Manager struct {
	resolver       Resolver
	resolveTimeout time.Duration
	root           netns.NsHandle
	conf           netconf.Configurator
	log            *logrus.Entry

	mu         sync.Mutex
	namespaces map[string]*namespace
}

type namespace struct {
	id       string
	pid      int  // init pid the namespace is bound to, 0 if none
	host     bool // bound to the root namespace (host networking)
	adapters []*adapter
}

func (n *namespace) bound() bool { return n.pid != 0 || n.host }

type adapter struct {
	id         string // lower-cased
	ifname     string
	settings   prot.LCOWNetworkAdapter
	configured bool
}

// AdapterInfo describes one recorded adapter.
type AdapterInfo struct {
	ID         string
	IfName     string
	Configured bool
}

// New returns a Manager. Close releases its root namespace handle.
func New(opts Options) (*Manager, error) {
	var (
		root netns.NsHandle
		err  error
	)
	if opts.RootNetNSPath != "" {
		root, err = netns.GetFromPath(opts.RootNetNSPath)
	} else {
		root, err = netns.Get()
	}
	if err != nil {
		return nil, fmt.Errorf("open root network namespace %q: %w", opts.RootNetNSPath, err)
	}
	m := &Manager{
		resolver:       opts.Resolver,
		resolveTimeout: opts.ResolveTimeout,
		root:           root,
		conf:           netconf.Configurator{Root: root, DHCP: opts.DHCP, Log: logging.Or(opts.Log)},
		log:            logging.Or(opts.Log),
		namespaces:     map[string]*namespace{},
	}
	if m.resolver == nil {
		m.resolver = ifname.New(ifname.DefaultRoot)
	}
	if m.resolveTimeout <= 0 {
		m.resolveTimeout = DefaultResolveTimeout
	}
	return m, nil
}

// Close releases the root namespace handle.
func (m *Manager) Close() error { return m.root.Close() }

func normalizeID(id string) string { return strings.ToLower(strings.TrimSpace(id)) }

func fail(err error) error { return prot.NewError(prot.HrFail, err) }

// lowMetric tells whether the adapter at position i of its namespace is a
// secondary adapter.
func lowMetric(s *prot.LCOWNetworkAdapter, i int) bool {
	return s.EnableLowMetric || (s.PolicyBasedRouting && i > 0)
}

// AddAdapter records the adapter in its namespace and, when the namespace is
// already bound, moves and configures it. On any error nothing is recorded
// or changed.
func (m *Manager) AddAdapter(ctx context.Context, s *prot.LCOWNetworkAdapter) error {
	nsID, id := normalizeID(s.NamespaceID), normalizeID(s.ID)
	log := m.log.WithFields(logrus.Fields{"namespace": nsID, "adapter": id})
	if nsID == "" {
		return fail(fmt.Errorf("add network adapter %s: %w: empty NamespaceID", id, ErrInvalidRequest))
	}
	if err := ifname.ValidateID(id); err != nil {
		return fail(fmt.Errorf("add network adapter to namespace %s: %w", nsID, err))
	}
	if _, err := netconf.Parse(s, false); err != nil {
		return fail(fmt.Errorf("add network adapter %s: %w", id, err))
	}
	if err := m.checkDuplicate(nsID, id); err != nil {
		return err
	}

	rctx, cancel := context.WithTimeout(ctx, m.resolveTimeout)
	name, err := m.resolver.InterfaceName(rctx, id, s.VPCIAssigned)
	cancel()
	if err != nil {
		return fail(fmt.Errorf("add network adapter %s: %w", id, err))
	}
	log = log.WithField("ifname", name)

	m.mu.Lock()
	defer m.mu.Unlock()
	ns, created := m.namespaces[nsID], false
	if ns == nil {
		ns, created = &namespace{id: nsID}, true
	}
	for _, a := range ns.adapters {
		if a.id == id {
			return fail(fmt.Errorf("add network adapter %s to namespace %s: %w", id, nsID, ErrDuplicateAdapter))
		}
		if a.ifname == name {
			return fail(fmt.Errorf("add network adapter %s to namespace %s: %w: interface %s already belongs to adapter %s", id, nsID, ErrDuplicateAdapter, name, a.id))
		}
	}
	a := &adapter{id: id, ifname: name, settings: *s}
	a.settings.IPConfigs = append([]prot.IPConfig(nil), s.IPConfigs...)
	a.settings.Routes = append([]prot.Route(nil), s.Routes...)
	ns.adapters = append(ns.adapters, a)
	if ns.bound() {
		if err := m.sync(ctx, ns); err != nil {
			ns.adapters = ns.adapters[:len(ns.adapters)-1]
			return err
		}
	}
	if created {
		m.namespaces[nsID] = ns
	}
	log.WithField("bound", ns.bound()).Info("network adapter added")
	return nil
}

func (m *Manager) checkDuplicate(nsID, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ns := m.namespaces[nsID]; ns != nil {
		for _, a := range ns.adapters {
			if a.id == id {
				return fail(fmt.Errorf("add network adapter %s to namespace %s: %w", id, nsID, ErrDuplicateAdapter))
			}
		}
	}
	return nil
}

// RemoveAdapter forgets the adapter. An unknown namespace or adapter is not
// an error. Nothing is unconfigured: the NIC goes away when the host
// hot-removes it.
func (m *Manager) RemoveAdapter(ctx context.Context, nsID, id string) error {
	nsID, id = normalizeID(nsID), normalizeID(id)
	log := m.log.WithFields(logrus.Fields{"namespace": nsID, "adapter": id})
	m.mu.Lock()
	defer m.mu.Unlock()
	ns := m.namespaces[nsID]
	if ns == nil {
		log.Warn("remove network adapter: namespace not found")
		return nil
	}
	for i, a := range ns.adapters {
		if a.id == id {
			ns.adapters = append(ns.adapters[:i], ns.adapters[i+1:]...)
			log.Info("network adapter removed")
			return nil
		}
	}
	log.Warn("remove network adapter: adapter not found")
	return nil
}

// Bind records pid (a sandbox or standalone container's init) as the owner
// of the namespace and moves every adapter not moved yet into pid's network
// namespace. If one adapter fails, the adapters moved by this call are
// moved back and the namespace stays unbound.
func (m *Manager) Bind(ctx context.Context, nsID string, pid int) error {
	nsID = normalizeID(nsID)
	if pid <= 0 {
		return fail(fmt.Errorf("bind network namespace %s: %w: pid %d", nsID, ErrInvalidRequest, pid))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ns := m.namespaces[nsID]
	if ns == nil {
		return fail(fmt.Errorf("bind network namespace %s to pid %d: %w", nsID, pid, ErrNamespaceNotFound))
	}
	if ns.host || (ns.pid != 0 && ns.pid != pid) {
		return fail(fmt.Errorf("bind network namespace %s to pid %d: %w (pid %d, host %t)", nsID, pid, ErrAlreadyBound, ns.pid, ns.host))
	}
	old := ns.pid
	ns.pid = pid
	if err := m.sync(ctx, ns); err != nil {
		ns.pid = old
		return err
	}
	m.log.WithFields(logrus.Fields{"namespace": nsID, "pid": pid, "adapters": len(ns.adapters)}).Info("network namespace bound")
	return nil
}

// BindHost configures the namespace's adapters in place, in the root
// namespace, for a host-networking container. Adapters added later are
// configured in place too.
func (m *Manager) BindHost(ctx context.Context, nsID string) error {
	nsID = normalizeID(nsID)
	m.mu.Lock()
	defer m.mu.Unlock()
	ns := m.namespaces[nsID]
	if ns == nil {
		return fail(fmt.Errorf("bind network namespace %s to the host: %w", nsID, ErrNamespaceNotFound))
	}
	if ns.pid != 0 {
		return fail(fmt.Errorf("bind network namespace %s to the host: %w (pid %d)", nsID, ErrAlreadyBound, ns.pid))
	}
	old := ns.host
	ns.host = true
	if err := m.sync(ctx, ns); err != nil {
		ns.host = old
		return err
	}
	m.log.WithFields(logrus.Fields{"namespace": nsID, "adapters": len(ns.adapters)}).Info("network namespace bound to the host namespace")
	return nil
}

// sync configures every adapter of the bound namespace ns that is not
// configured yet, all or nothing. m.mu is held.
func (m *Manager) sync(ctx context.Context, ns *namespace) (err error) {
	var pending []int
	for i, a := range ns.adapters {
		if !a.configured {
			pending = append(pending, i)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	dest := netns.None()
	if !ns.host {
		dest, err = netns.GetFromPid(ns.pid)
		if err != nil {
			return fail(fmt.Errorf("network namespace %s: open netns of pid %d: %w", ns.id, ns.pid, err))
		}
		defer dest.Close()
	}
	var done []*netconf.Applied
	defer func() {
		if err == nil {
			for _, ap := range done {
				ap.Release()
			}
			return
		}
		for i := len(done) - 1; i >= 0; i-- {
			if uerr := done[i].Undo(); uerr != nil {
				m.log.WithField("namespace", ns.id).WithError(uerr).Error("network rollback incomplete")
			}
		}
	}()
	for _, i := range pending {
		a := ns.adapters[i]
		cfg, perr := netconf.Parse(&a.settings, lowMetric(&a.settings, i))
		if perr != nil {
			return fail(fmt.Errorf("network adapter %s: %w", a.id, perr))
		}
		ap, aerr := m.conf.Apply(ctx, a.ifname, dest, cfg)
		if aerr != nil {
			return fail(fmt.Errorf("configure network adapter %s (%s) of namespace %s: %w", a.id, a.ifname, ns.id, aerr))
		}
		done = append(done, ap)
	}
	for _, i := range pending {
		ns.adapters[i].configured = true
	}
	return nil
}

// EnsureNamespace creates an empty record for nsID if there is none.
func (m *Manager) EnsureNamespace(nsID string) {
	nsID = normalizeID(nsID)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.namespaces[nsID] == nil {
		m.namespaces[nsID] = &namespace{id: nsID}
	}
}

// RemoveNamespace forgets the record of nsID and its adapters; nothing is
// unconfigured. Unknown ids are ignored.
func (m *Manager) RemoveNamespace(nsID string) {
	nsID = normalizeID(nsID)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.namespaces, nsID)
}

// Adapters lists the adapters of nsID in insertion order; ok is false when
// there is no record.
func (m *Manager) Adapters(nsID string) (_ []AdapterInfo, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ns := m.namespaces[normalizeID(nsID)]
	if ns == nil {
		return nil, false
	}
	out := make([]AdapterInfo, 0, len(ns.adapters))
	for _, a := range ns.adapters {
		out = append(out, AdapterInfo{ID: a.id, IfName: a.ifname, Configured: a.configured})
	}
	return out, true
}

// AdapterSettings returns the settings of the namespace's adapters, in the
// order they were added (the sandbox's resolv.conf is built from their DNS
// fields, see oci.DNSFromAdapters).
func (m *Manager) AdapterSettings(nsID string) ([]prot.LCOWNetworkAdapter, error) {
	nsID = normalizeID(nsID)
	m.mu.Lock()
	defer m.mu.Unlock()
	ns := m.namespaces[nsID]
	if ns == nil {
		return nil, fail(fmt.Errorf("adapters of network namespace %s: %w", nsID, ErrNamespaceNotFound))
	}
	out := make([]prot.LCOWNetworkAdapter, 0, len(ns.adapters))
	for _, a := range ns.adapters {
		out = append(out, a.settings)
	}
	return out, nil
}
