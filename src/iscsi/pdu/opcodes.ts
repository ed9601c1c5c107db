/** Initiator opcodes (RFC 7143 §11.2.1.2). */
export const enum InitiatorOpcode {
  /** NOP-Out */
  NopOut = 0x00,
  /** SCSI Command */
  ScsiCommand = 0x01,
  /** SCSI Task Management Function Request */
  TaskManagementRequest = 0x02,
  /** Login Request */
  LoginRequest = 0x03,
  /** Text Request */
  TextRequest = 0x04,
  /** SCSI Data-Out (for write operations) */
  DataOut = 0x05,
  /** Logout Request */
  LogoutRequest = 0x06,
  /** SNACK Request */
  SnackRequest = 0x10,
}

/** Target opcodes (RFC 7143 §11.2.1.2). */
export const enum TargetOpcode {
  /** NOP-In */
  NopIn = 0x20,
  /** SCSI Response */
  ScsiResponse = 0x21,
  /** SCSI Task Management Function Response */
  TaskManagementResponse = 0x22,
  /** Login Response */
  LoginResponse = 0x23,
  /** Text Response */
  TextResponse = 0x24,
  /** SCSI Data-In (for read operations) */
  DataIn = 0x25,
  /** Logout Response */
  LogoutResponse = 0x26,
  /** Ready To Transfer (R2T) */
  R2t = 0x31,
  /** Asynchronous Message */
  AsyncMessage = 0x32,
  /** Reject */
  Reject = 0x3f,
}

/** Reject reason codes (RFC 7143 §11.17.1). */
export const enum RejectReason {
  DataDigestError = 0x02,
  SnackReject = 0x03,
  ProtocolError = 0x04,
  CommandNotSupported = 0x05,
  ImmediateCommandReject = 0x06,
  TaskInProgress = 0x07,
  InvalidDataAck = 0x08,
  InvalidPduField = 0x09,
  LongOperationReject = 0x0a,
  WaitingForLogout = 0x0c,
}

/** Task management function codes (RFC 7143 §11.5.1). */
export const enum TmfFunction {
  AbortTask = 1,
  AbortTaskSet = 2,
  ClearAca = 3,
  ClearTaskSet = 4,
  LogicalUnitReset = 5,
  TargetWarmReset = 6,
  TargetColdReset = 7,
  TaskReassign = 8,
}

/** Task management response codes (RFC 7143 §11.6.1). */
export const enum TmfResponse {
  FunctionComplete = 0,
  TaskDoesNotExist = 1,
  LunDoesNotExist = 2,
  TaskStillAllegiant = 3,
  ReassignmentNotSupported = 4,
  FunctionNotSupported = 5,
  AuthorizationFailed = 6,
  Rejected = 255,
}

/** Logout reason codes (RFC 7143 §11.14.1) and responses (§11.15.1). */
export const enum LogoutReason {
  CloseSession = 0,
  CloseConnection = 1,
  RemoveConnectionForRecovery = 2,
}

export const enum LogoutResponseCode {
  Success = 0,
  CidNotFound = 1,
  RecoveryNotSupported = 2,
  CleanupFailed = 3,
}

/** Login status (RFC 7143 §11.13.5): class in the high byte, detail in the low byte. */
export const enum LoginStatus {
  Success = 0x0000,
  TargetMovedTemporarily = 0x0101,
  InitiatorError = 0x0200,
  AuthenticationFailure = 0x0201,
  AuthorizationFailure = 0x0202,
  NotFound = 0x0203,
  TargetRemoved = 0x0204,
  UnsupportedVersion = 0x0205,
  TooManyConnections = 0x0206,
  MissingParameter = 0x0207,
  CannotIncludeInSession = 0x0208,
  SessionTypeNotSupported = 0x0209,
  SessionDoesNotExist = 0x020a,
  InvalidDuringLogin = 0x020b,
  TargetError = 0x0300,
  ServiceUnavailable = 0x0301,
  OutOfResources = 0x0302,
}

/** Asynchronous event codes (RFC 7143 §11.9.1). */
export const enum AsyncEvent {
  ScsiAsyncEvent = 0,
  LogoutRequest = 1,
  ConnectionDrop = 2,
  SessionDrop = 3,
  NegotiationRequest = 4,
}

/** Login stages (RFC 7143 §11.12.3, CSG/NSG). */
export const enum LoginStage {
  Security = 0,
  Operational = 1,
  FullFeature = 3,
}

/** The reserved tag value (RFC 7143 §11.2.1.8, §11.18.2). */
export const RESERVED_TAG = 0xffffffff;
/** Length of the Basic Header Segment (RFC 7143 §11.2.1). */
export const BHS_LENGTH = 48;

const INITIATOR_NAMES: Record<number, string> = {
  0x00: 'nop-out',
  0x01: 'scsi-command',
  0x02: 'task-management',
  0x03: 'login',
  0x04: 'text',
  0x05: 'data-out',
  0x06: 'logout',
  0x10: 'snack',
};

const TARGET_NAMES: Record<number, string> = {
  0x20: 'nop-in',
  0x21: 'scsi-response',
  0x22: 'task-management-response',
  0x23: 'login-response',
  0x24: 'text-response',
  0x25: 'data-in',
  0x26: 'logout-response',
  0x31: 'r2t',
  0x32: 'async',
  0x3f: 'reject',
};

/** A small, fixed label set for metrics and logs. */
export function opcodeName(opcode: number): string {
  return INITIATOR_NAMES[opcode] ?? TARGET_NAMES[opcode] ?? 'unknown';
}
