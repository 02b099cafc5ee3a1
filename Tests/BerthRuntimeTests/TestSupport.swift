@_exported import BerthTestSupport
