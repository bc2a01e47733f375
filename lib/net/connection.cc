#include "lib/net/connection.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <tuple>
#include <utility>

#include "lib/net/asio_error.h"
#include "lib/net/connection_impl.h"

namespace cairn::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
// Frames up to this size are copied behind their header and sent as one TLS
// record; larger ones go as a gathered write (the copy would cost more than
// the extra 8-byte record).
constexpr size_t kCoalesceLimit = 16 * 1024;

std::chrono::milliseconds OrDefault(std::chrono::milliseconds value,
                                    std::chrono::milliseconds fallback) {
  return value.count() > 0 ? value : fallback;
}

}  // namespace

void ConnectionOptions::Sanitize() {
  const ConnectionOptions defaults;
  read_deadline = OrDefault(read_deadline, defaults.read_deadline);
  write_deadline = OrDefault(write_deadline, defaults.write_deadline);
  close_deadline = OrDefault(close_deadline, defaults.close_deadline);
}

// ---------------------------------------------------------------------------
// Connection::Impl

Connection::Impl::Impl(Socket socket, TlsContext tls_context, const ConnectionOptions& opts)
    : tls(std::move(tls_context)),
      stream(std::move(socket), *tls),
      options(opts),
      read_deadline(stream.get_executor()),
      write_deadline(stream.get_executor()) {
  options.Sanitize();
}

void Connection::Impl::Arm(Deadline& deadline, std::chrono::milliseconds timeout) {
  ++deadline.generation;
  deadline.armed = true;
  deadline.expired = false;
  deadline.timer.expires_after(timeout);
  deadline.timer.async_wait(
      [weak = weak_from_this(), d = &deadline, generation = deadline.generation](error_code ec) {
        if (ec) return;  // cancelled by Disarm or destruction
        std::shared_ptr<Impl> self = weak.lock();
        if (!self || !d->armed || d->generation != generation) return;
        d->expired = true;
        error_code ignored;
        self->stream.lowest_layer().cancel(ignored);
      });
}

bool Connection::Impl::Disarm(Deadline& deadline) {
  deadline.armed = false;
  deadline.timer.cancel();
  return deadline.expired;
}

Status Connection::Impl::FailTransport(Status status) {
  broken = true;
  if (read_failure.ok()) read_failure = status;
  if (write_failure.ok()) write_failure = status;
  return status;
}

void Connection::Impl::CancelNow(Status reason) {
  if (cancel_reason.ok()) cancel_reason = std::move(reason);
  broken = true;
  error_code ignored;
  stream.lowest_layer().cancel(ignored);
  stream.lowest_layer().shutdown(Socket::shutdown_both, ignored);
}

void Connection::Impl::SetRemote() {
  error_code ec;
  // Frames are written whole (one gathered write each), so Nagle's
  // algorithm only delays them: a small request written while the peer
  // has not yet acknowledged the previous frame would wait for its
  // delayed ACK (up to 40 ms on Linux) before it is sent.
  stream.lowest_layer().set_option(boost::asio::ip::tcp::no_delay(true), ec);
  auto endpoint = stream.lowest_layer().remote_endpoint(ec);
  if (ec) {
    remote = "unknown";
    return;
  }
  const auto address = endpoint.address();
  remote = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  remote += ":" + std::to_string(endpoint.port());
}

asio::awaitable<Status> Connection::Impl::Handshake(asio::ssl::stream_base::handshake_type type,
                                                    std::chrono::milliseconds timeout) {
  Arm(read_deadline, timeout);
  auto [ec] = co_await stream.async_handshake(type, kAwait);
  const bool expired = Disarm(read_deadline);
  if (ec) {
    Status status;
    if (expired) {
      status = Status::Unavailable("handshake deadline exceeded");
    } else if (ec == asio::error::operation_aborted && !cancel_reason.ok()) {
      status = cancel_reason;
    } else {
      status = internal::AsioErrorToStatus(ec, "TLS handshake");
      const long verify = SSL_get_verify_result(stream.native_handle());
      if (verify != X509_V_OK) {
        status = Status::PermissionDenied(status.message() + " (" +
                                          X509_verify_cert_error_string(verify) + ")");
      }
    }
    co_return FailTransport(std::move(status));
  }
  handshake_done = true;
  // Only a certificate that passed verification (including our revocation
  // callback) becomes an identity.
  X509* cert = SSL_get0_peer_certificate(stream.native_handle());
  if (cert != nullptr && SSL_get_verify_result(stream.native_handle()) == X509_V_OK) {
    unsigned char* der = nullptr;
    const int len = i2d_X509(cert, &der);
    if (len > 0) {
      Result<crypto::PeerIdentity> id =
          crypto::ParseIdentityDer(ByteView(der, static_cast<size_t>(len)));
      if (id.ok()) peer = std::move(id).value();
    }
    OPENSSL_free(der);
  }
  co_return Status::OK();
}

// ---------------------------------------------------------------------------
// Connection

Connection::Connection(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Connection::~Connection() {
  if (!impl_) return;
  // Timers hold only weak references; closing here ends the socket at once.
  error_code ignored;
  impl_->read_deadline.timer.cancel();
  impl_->write_deadline.timer.cancel();
  impl_->stream.lowest_layer().close(ignored);
}

asio::awaitable<Result<Frame>> Connection::ReadFrame() {
  return ReadFrame(impl_->options.read_deadline, proto::kMaxFramePayload);
}

asio::awaitable<Result<Frame>> Connection::ReadFrame(std::chrono::milliseconds deadline,
                                                     uint32_t limit) {
  std::shared_ptr<Impl> s = impl_;  // outlives a Connection dropped mid-read
  if (!s->read_failure.ok()) co_return s->read_failure;
  if (s->closed) co_return Status::Cancelled("connection closed");

  // Turns an I/O error into the status the caller sees, and records it.
  auto fail = [&s](const error_code& ec) {
    const bool expired = s->Disarm(s->read_deadline);
    if (expired) return s->FailTransport(Status::Unavailable("read deadline exceeded"));
    if (ec == asio::error::operation_aborted && !s->cancel_reason.ok()) {
      return s->FailTransport(s->cancel_reason);
    }
    return s->FailTransport(internal::AsioErrorToStatus(ec, "read"));
  };

  s->Arm(s->read_deadline, deadline);
  std::array<uint8_t, proto::kFrameHeaderSize> header;
  {
    auto [ec, n] = co_await asio::async_read(s->stream, asio::buffer(header), kAwait);
    if (ec) co_return fail(ec);
  }
  Result<proto::FrameHeader> parsed = proto::ParseFrameHeader(header, limit);
  if (!parsed.ok()) {
    s->Disarm(s->read_deadline);
    // The stream is out of step: no further reads. Writes still work.
    s->read_failure = parsed.status();
    co_return parsed.status();
  }
  Frame frame;
  frame.type = parsed->type;
  frame.payload.resize(parsed->length);
  if (!frame.payload.empty()) {
    auto [ec, n] = co_await asio::async_read(s->stream, asio::buffer(frame.payload), kAwait);
    if (ec) co_return fail(ec);
  }
  s->Disarm(s->read_deadline);
  co_return frame;
}

asio::awaitable<Status> Connection::WriteFrame(proto::MessageType type, ByteView payload) {
  return WriteFrame(type, payload, impl_->options.write_deadline);
}

asio::awaitable<Status> Connection::WriteFrame(proto::MessageType type, ByteView payload,
                                               std::chrono::milliseconds deadline) {
  std::shared_ptr<Impl> s = impl_;
  if (!s->write_failure.ok()) co_return s->write_failure;
  if (s->closed) co_return Status::Cancelled("connection closed");
  if (payload.size() > proto::MaxPayloadFor(type)) {
    co_return Status::InvalidArgument(std::string(proto::MessageTypeName(type)) + " payload of " +
                                      std::to_string(payload.size()) +
                                      " bytes exceeds the frame limit");
  }

  std::array<uint8_t, proto::kFrameHeaderSize> header;
  proto::EncodeFrameHeader({type, static_cast<uint32_t>(payload.size())}, header.data());
  Bytes coalesced;
  s->Arm(s->write_deadline, deadline);
  error_code ec;
  if (payload.size() <= kCoalesceLimit) {
    coalesced.resize(header.size() + payload.size());
    std::memcpy(coalesced.data(), header.data(), header.size());
    if (!payload.empty())
      std::memcpy(coalesced.data() + header.size(), payload.data(), payload.size());
    std::tie(ec, std::ignore) =
        co_await asio::async_write(s->stream, asio::buffer(coalesced), kAwait);
  } else {
    const std::array<asio::const_buffer, 2> buffers = {
        asio::buffer(header), asio::buffer(payload.data(), payload.size())};
    std::tie(ec, std::ignore) = co_await asio::async_write(s->stream, buffers, kAwait);
  }
  const bool expired = s->Disarm(s->write_deadline);
  if (!ec) co_return Status::OK();
  if (expired) co_return s->FailTransport(Status::Unavailable("write deadline exceeded"));
  if (ec == asio::error::operation_aborted && !s->cancel_reason.ok()) {
    co_return s->FailTransport(s->cancel_reason);
  }
  co_return s->FailTransport(internal::AsioErrorToStatus(ec, "write"));
}

asio::awaitable<void> Connection::Close() {
  std::shared_ptr<Impl> s = impl_;
  if (s->closed) co_return;
  s->closed = true;
  if (s->handshake_done && !s->broken) {
    // close_notify, then wait (bounded) for the peer's.
    s->Arm(s->write_deadline, s->options.close_deadline);
    co_await s->stream.async_shutdown(kAwait);  // a failed goodbye changes nothing
    s->Disarm(s->write_deadline);
  }
  error_code ignored;
  s->stream.lowest_layer().shutdown(Impl::Socket::shutdown_both, ignored);
  s->stream.lowest_layer().close(ignored);
}

void Connection::Cancel(Status reason) {
  if (reason.ok()) reason = Status::Cancelled("connection cancelled");
  asio::post(impl_->stream.get_executor(), [s = impl_, reason = std::move(reason)]() mutable {
    s->CancelNow(std::move(reason));
  });
}

const std::optional<crypto::PeerIdentity>& Connection::peer() const { return impl_->peer; }

const std::string& Connection::remote_endpoint() const { return impl_->remote; }

std::string Connection::Describe() const {
  std::string out = impl_->remote;
  if (impl_->peer) {
    out += " " + impl_->peer->role + "/" + impl_->peer->department + "/" + impl_->peer->host;
  }
  return out;
}

Status Connection::failure() const {
  return impl_->read_failure.ok() ? impl_->write_failure : impl_->read_failure;
}

const ConnectionOptions& Connection::options() const { return impl_->options; }

asio::any_io_executor Connection::executor() const { return impl_->stream.get_executor(); }

}  // namespace cairn::net
