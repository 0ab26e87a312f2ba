package clustertest

import (
	"errors"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// idleWatcher is a mail client that keeps INBOX in sync the cheap way: it
// IDLEs, and on every EXISTS fetches UID FETCH last+1:* where last is the
// highest UID it has seen. It relies on what RFC 3501 promises (UIDs of new
// messages only grow), so a new message with a lower UID is one it never
// fetches.
type idleWatcher struct {
	in    *instance
	prob  *problems
	notes *problems
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	label string // "IDLE client in A"

	mu   sync.Mutex
	seen map[imap.UID]string // UID → Message-ID
	byID map[string]imap.UID
	last imap.UID
	// onNew, if set, is called (without mu) for every new message seen.
	onNew func(id string, uid imap.UID, at time.Time)
}

func newIdleWatcher(in *instance, prob, notes *problems) *idleWatcher {
	return &idleWatcher{
		in: in, prob: prob, notes: notes, label: "IDLE client in " + in.name,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		seen: make(map[imap.UID]string), byID: make(map[string]imap.UID),
	}
}

// start runs the watcher and returns once its first sync is done.
func (w *idleWatcher) start() {
	ready := make(chan struct{})
	go w.run(ready)
	select {
	case <-ready:
	case <-w.done:
	}
}

func (w *idleWatcher) run(ready chan struct{}) {
	defer close(w.done)
	var once sync.Once
	defer once.Do(func() { close(ready) })
	h := &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case w.wake <- struct{}{}:
				default:
				}
			}
		},
	}
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		s, err := dialIMAP(w.in, w.prob, h)
		if err == nil {
			_, err = s.Select("INBOX", nil).Wait()
			if err != nil {
				s.Close()
			}
		}
		if err != nil {
			w.prob.add(w.label+": cannot connect/select", "%v", err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		err = w.syncRetry(s)
		once.Do(func() { close(ready) })
		if err == nil {
			err = w.idleLoop(s)
		}
		if err == nil { // stopped
			s.logout()
			return
		}
		w.prob.add(w.label+": session failed", "%v", err)
		s.Close()
		time.Sleep(100 * time.Millisecond)
	}
}

// idleLoop IDLEs until an EXISTS arrives, syncs, and again, until stop.
func (w *idleWatcher) idleLoop(s *session) error {
	for {
		idle, err := s.Idle()
		if err != nil {
			return err
		}
		stopped := false
		select {
		case <-w.wake:
		case <-w.stop:
			stopped = true
		case <-s.Closed():
		}
		if err := idle.Close(); err != nil {
			return err
		}
		if err := idle.Wait(); err != nil {
			return err
		}
		if stopped {
			return nil
		}
		if err := w.syncRetry(s); err != nil {
			return err
		}
	}
}

// syncRetry is sync, tried again when the server answers NO
// [EXPUNGEISSUED]: RFC 9051 lets it refuse a FETCH of a message another
// process expunged meanwhile, and a client then simply fetches again.
func (w *idleWatcher) syncRetry(s *session) error {
	for try := 0; ; try++ {
		err := w.sync(s)
		var ierr *imap.Error
		if try < 10 && errors.As(err, &ierr) && ierr.Code == "EXPUNGEISSUED" {
			w.notes.add(w.label+": UID FETCH answered NO [EXPUNGEISSUED], fetched again", "%v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		return err
	}
}

// sync fetches last+1:* and checks what comes back.
func (w *idleWatcher) sync(s *session) error {
	w.mu.Lock()
	from := w.last + 1
	w.mu.Unlock()
	var set imap.UIDSet
	set.AddRange(from, 0)
	msgs, err := fetchIDs(s.Client, set, false)
	if err != nil {
		return err
	}
	now := time.Now()
	type found struct {
		id  string
		uid imap.UID
	}
	var news []found
	w.mu.Lock()
	for _, m := range msgs {
		if m.id == "" {
			continue // a flag update that came with the answer
		}
		if id, ok := w.seen[m.uid]; ok {
			if id != m.id {
				w.prob.add(w.label+": one UID given to two messages", "UID %d: %s, then %s", m.uid, id, m.id)
			}
			continue
		}
		if uid, ok := w.byID[m.id]; ok && uid != m.uid {
			w.prob.add(w.label+": a message came back with another UID", "%s: UID %d, then %d", m.id, uid, m.uid)
		}
		if m.uid < w.last {
			w.prob.add(w.label+": new message with a UID below the highest already seen", "%s UID %d < %d", m.id, m.uid, w.last)
		}
		w.seen[m.uid] = m.id
		w.byID[m.id] = m.uid
		w.last = max(w.last, m.uid)
		news = append(news, found{m.id, m.uid})
	}
	onNew := w.onNew
	w.mu.Unlock()
	if onNew != nil {
		for _, n := range news {
			onNew(n.id, n.uid, now)
		}
	}
	return nil
}

// missing returns the ids of want the watcher has not seen.
func (w *idleWatcher) missing(want map[string]bool) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for id := range want {
		if _, ok := w.byID[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

// waitFor waits until the watcher has seen every id in want, or timeout.
func (w *idleWatcher) waitFor(want map[string]bool, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		miss := w.missing(want)
		if len(miss) == 0 || time.Now().After(deadline) {
			return miss
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *idleWatcher) close() {
	close(w.stop)
	<-w.done
}
