"""A pyghmi-based BMC for the tests: N BMCs in one process, on 127.0.0.1.

Usage: pyghmi_bmc.py USER PASSWORD COUNT

Prints "READY port1 port2 ..." once every BMC listens (ports are chosen by the
kernel), then serves until killed, logging "BMC PORT <event>" lines (power
actions, boot flags, nmi, session open/close, device id). Each BMC keeps its power state and all five
boot flag bytes (stock pyghmi keeps neither), supports Chassis Control diag (NMI)
and soft off, and speaks cipher suite 17 (RAKP-HMAC-SHA256) besides stock
pyghmi's suite 3, so that both suites can be checked with ipmitool.
"""

import hashlib
import hmac
import os
import struct
import sys

import pyghmi.ipmi.bmc as bmc
import pyghmi.ipmi.private.serversession as serversession


class Suite17ServerSession(serversession.ServerSession):
    """pyghmi's ServerSession with cipher suite 17 as well as 3."""

    def _suite(self, request):
        # auth algorithm of the Open Session Request (byte 12 of the payload)
        return 17 if len(request) > 12 and request[12] & 0x3F == 3 else 3

    def create_open_session_response(self, request):
        suite = self._suite(request)
        self.rakphash = hashlib.sha256 if suite == 17 else hashlib.sha1
        self.icvlen = 16 if suite == 17 else 12
        clienttag = request[0]
        self.clientsessionid = request[4:8]
        self.managedsessionid = bytearray(os.urandom(4))
        self.privlevel = 4
        auth, integ = (3, 4) if suite == 17 else (1, 1)
        return (bytearray([clienttag, 0, self.privlevel, 0])
                + self.clientsessionid + self.managedsessionid
                + bytearray([0, 0, 0, 8, auth, 0, 0, 0,
                             1, 0, 0, 8, integ, 0, 0, 0,
                             2, 0, 0, 8, 1, 0, 0, 0]))

    def _got_rakp1(self, data):
        clienttag = data[0]
        self.Rm = data[8:24]
        self.rolem = data[24]
        self.maxpriv = self.rolem & 0b111
        namepresent = data[27]
        if namepresent == 0:
            return
        self.username = bytes(data[28:])
        password = self.authdata.get(self.username.decode('utf-8'))
        if password is None:
            return
        self.uuiddata = self.uuid.bytes
        self.Rc = bytearray(os.urandom(16))
        hmacdata = (self.clientsessionid + self.managedsessionid
                    + self.Rm + self.Rc + self.uuiddata
                    + bytearray([self.rolem, len(self.username)]))
        hmacdata += self.username
        self.kuid = password.encode('utf-8')
        if self.kg is None:
            self.kg = self.kuid
        authcode = hmac.new(self.kuid, bytes(hmacdata), self.rakphash).digest()
        newmessage = (bytearray([clienttag, 0, 0, 0]) + self.clientsessionid
                      + self.Rc + self.uuiddata + authcode)
        self.send_payload(newmessage, 0x13, retry=False)

    def _got_rakp3(self, data):
        rmrc = self.Rm + self.Rc
        namedata = struct.pack("2B", self.rolem, len(self.username)) + self.username
        self.sik = hmac.new(self.kg, bytes(rmrc) + namedata, self.rakphash).digest()
        self.k1 = hmac.new(self.sik, b'\x01' * 20, self.rakphash).digest()
        self.k2 = hmac.new(self.sik, b'\x02' * 20, self.rakphash).digest()
        self.aeskey = self.k2[0:16]
        hmacdata = self.Rc + self.clientsessionid + namedata
        expected = hmac.new(self.kuid, bytes(hmacdata), self.rakphash).digest()
        if expected != bytes(data[8:]) or data[1] != 0:
            return
        self.localsid = struct.unpack('<I', self.managedsessionid)[0]
        self.ipmicallback = self.handle_client_request
        self._send_rakp4(data[0], 0)
        self.bmc.log('session open')

    def close_server_session(self):
        self.bmc.log('session close')

    def _send_rakp4(self, tagvalue, statuscode):
        payload = bytearray([tagvalue, statuscode, 0, 0]) + self.clientsessionid
        hmacdata = bytes(self.Rm + self.managedsessionid + self.uuiddata)
        payload += hmac.new(self.sik, hmacdata, self.rakphash).digest()[:self.icvlen]
        self.send_payload(payload, 0x15, retry=False)
        self.confalgo = 'aes'
        self.integrityalgo = 'sha256' if self.icvlen == 16 else 'sha1'
        self.currhashlib = self.rakphash
        self.currhashlen = self.icvlen
        self.sequencenumber = 1
        self.sessionid = struct.unpack('<I', bytes(self.clientsessionid))[0]


serversession.ServerSession = Suite17ServerSession


class StatefulBmc(bmc.Bmc):
    """Keeps power state and boot flags; logs actions on stdout."""

    def __init__(self, authdata, index):
        super().__init__(authdata, port=0, address='127.0.0.1')
        self.port = self.serversocket.getsockname()[1]
        self.index = index
        self.power = 'off'
        self.bootflags = [0, 0, 0, 0, 0]

    def log(self, what):
        print(f"BMC {self.port} {what}", flush=True)

    def get_power_state(self):
        return self.power

    def power_off(self):
        self.power = 'off'
        self.log('power off')

    def power_on(self):
        self.power = 'on'
        self.log('power on')

    def power_cycle(self):
        self.power = 'on'
        self.log('power cycle')

    def power_reset(self):
        self.log('power reset')

    def power_shutdown(self):
        self.power = 'off'
        self.log('soft off')

    def pulse_diag(self):
        self.log('nmi')

    def send_device_id(self, session):
        self.log('device id')
        super().send_device_id(session)

    def get_system_boot_options(self, request, session):
        if request['data'][0] & 0x7F == 5:
            return session.send_ipmi_response(data=[1, 5] + self.bootflags)
        session.send_ipmi_response(code=0x80)

    def set_system_boot_options(self, request, session):
        data = list(request['data'])
        param = data[0] & 0x7F
        if param == 5:
            if len(data) < 6:
                return session.send_ipmi_response(code=0xC7)
            self.bootflags = data[1:6]
            self.log('boot flags ' + bytes(self.bootflags).hex())
        # parameters 0, 3, 4: accepted and ignored, as stock pyghmi does
        session.send_ipmi_response()


def main():
    user, password, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    bmcs = [StatefulBmc({user: password}, i) for i in range(count)]
    print("READY " + " ".join(str(b.port) for b in bmcs), flush=True)
    bmc.Bmc.listen(timeout=30)


if __name__ == '__main__':
    main()
