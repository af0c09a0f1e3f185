package load

// Transport sends requests to one target. NewSender is called once per
// worker; a Sender is used by one goroutine at a time, so it can own the
// buffers that keep the hot path free of allocations.
type Transport interface {
	NewSender() Sender
	Close()
}

// Sender sends payload number payload and waits for the answer.
type Sender interface {
	Send(payload int) Outcome
}

// Picker chooses the payload of the next request. payloads.Set is one.
type Picker interface {
	Next() int
}

// PickerFunc adapts a function to Picker.
type PickerFunc func() int

// Next calls f.
func (f PickerFunc) Next() int { return f() }
