package load

// socketState is what waits on an idle connection's socket.
type socketState uint8

const (
	socketQuiet   socketState = iota // nothing: the connection may carry a request
	socketBytes                      // bytes nobody has read yet
	socketClosed                     // the peer closed or reset the connection
	socketUnknown                    // this platform cannot look
)
