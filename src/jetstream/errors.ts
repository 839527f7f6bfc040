// JetStream API errors, spelled once: nats-server's err_code, HTTP-like code and description
// (server/errors.json). Descriptions with {placeholders} are filled by apiError().

/** The error object in every API response and PubAck: `{"code":…,"err_code":…,"description":…}`. */
export interface ApiErrorJson {
  code: number;
  err_code: number;
  description: string;
}

export const JsError = {
  AccountResourcesExceeded: [10002, 400, "resource limits exceeded for account"],
  BadRequest: [10003, 400, "bad request"],
  ClusterNoPeers: [10005, 400, "{err}"],
  ClusterNotAvailable: [10008, 503, "JetStream system temporarily unavailable"],
  ConsumerCreate: [10012, 500, "{err}"],
  ConsumerNameExist: [10013, 400, "consumer name already in use"],
  ConsumerNotFound: [10014, 404, "consumer not found"],
  ConsumerDurableNameNotInSubject: [10016, 400, "consumer expected to be durable but no durable name set in subject"],
  ConsumerDurableNameNotMatchSubject: [10017, 400, "consumer name in subject does not match durable name in request"],
  ConsumerDurableNameNotSet: [10018, 400, "consumer expected to be durable but a durable name was not set"],
  ConsumerEphemeralWithDurableInSubject: [10019, 400, "consumer expected to be ephemeral but detected a durable name set in subject"],
  ConsumerEphemeralWithDurableName: [10020, 400, "consumer expected to be ephemeral but a durable name was set in request"],
  InsufficientResources: [10023, 503, "insufficient resources"],
  InvalidJSON: [10025, 400, "invalid JSON"],
  InvalidJSONWithReason: [10025, 400, "invalid JSON: {err}"],
  MaximumConsumersLimit: [10026, 400, "maximum consumers limit reached"],
  MaximumStreamsLimit: [10027, 400, "maximum number of streams reached"],
  MemoryResourcesExceeded: [10028, 500, "insufficient memory resources available"],
  NoMessageFound: [10037, 404, "no message found"],
  NotEmptyRequest: [10038, 400, "expected an empty request payload"],
  NotEnabledForAccount: [10039, 503, "JetStream not enabled for account"],
  SequenceNotFound: [10043, 400, "sequence {seq} not found"],
  StorageResourcesExceeded: [10047, 500, "insufficient storage resources available"],
  StreamDelete: [10050, 500, "{err}"],
  StreamGeneral: [10051, 500, "{err}"],
  StreamInvalidConfig: [10052, 500, "{err}"],
  StreamLimits: [10053, 500, "{err}"],
  StreamMessageExceedsMaximum: [10054, 400, "message size exceeds maximum allowed"],
  StreamMismatch: [10056, 400, "stream name in subject does not match request"],
  StreamMsgDeleteFailed: [10057, 500, "{err}"],
  StreamNameExist: [10058, 400, "stream name already in use with a different configuration"],
  StreamNotFound: [10059, 404, "stream not found"],
  StreamNotMatch: [10060, 400, "expected stream does not match"],
  StreamReplicasNotUpdatable: [10061, 400, "Replicas configuration can not be updated"],
  StreamSequenceNotMatch: [10063, 503, "expected stream sequence does not match"],
  StreamSubjectOverlap: [10065, 400, "subjects overlap with an existing stream"],
  StreamUpdate: [10069, 500, "{err}"],
  StreamWrongLastMsgID: [10070, 400, "wrong last msg ID: {id}"],
  StreamWrongLastSequence: [10071, 400, "wrong last sequence: {seq}"],
  StreamReplicasNotSupported: [10074, 500, "replicas > 1 not supported in non-clustered mode"],
  NotEnabled: [10076, 503, "JetStream not enabled"],
  StreamStoreFailed: [10077, 503, "{err}"],
  ConsumerConfigRequired: [10078, 400, "consumer config required"],
  ConsumerDeliverToWildcards: [10079, 400, "consumer deliver subject has wildcards"],
  ConsumerPushMaxWaiting: [10080, 400, "consumer in push mode can not set max waiting"],
  ConsumerDeliverCycle: [10081, 400, "consumer deliver subject forms a cycle"],
  ConsumerMaxPendingAckPolicyRequired: [10082, 400, "consumer requires ack policy for max ack pending"],
  ConsumerSmallHeartbeat: [10083, 400, "consumer idle heartbeat needs to be >= 100ms"],
  ConsumerPullRequiresAck: [10084, 400, "consumer in pull mode requires ack policy"],
  ConsumerPullWithRateLimit: [10086, 400, "consumer in pull mode can not have rate limit set"],
  ConsumerMaxWaitingNegative: [10087, 400, "consumer max waiting needs to be positive"],
  ConsumerHBRequiresPush: [10088, 400, "consumer idle heartbeat requires a push based consumer"],
  ConsumerFCRequiresPush: [10089, 400, "consumer flow control requires a push based consumer"],
  ConsumerFilterNotSubset: [10093, 400, "consumer filter subject is not a valid subset of the interest subjects"],
  ConsumerInvalidPolicy: [10094, 400, "{err}"],
  ConsumerInvalidSampling: [10095, 400, "failed to parse consumer sampling configuration: {err}"],
  ConsumerWQRequiresExplicitAck: [10098, 400, "workqueue stream requires explicit ack"],
  ConsumerWQMultipleUnfiltered: [10099, 400, "multiple non-filtered consumers not allowed on workqueue stream"],
  ConsumerWQConsumerNotUnique: [10100, 400, "filtered consumer not unique on workqueue stream"],
  ConsumerWQConsumerNotDeliverAll: [10101, 400, "consumer must be deliver all on workqueue stream"],
  ConsumerNameTooLong: [10102, 400, "consumer name is too long, maximum allowed is {max}"],
  ConsumerBadDurableName: [10103, 400, "durable name can not contain '.', '*', '>'"],
  ConsumerExistingActive: [10105, 400, "consumer already exists and is still active"],
  ConsumerReplacementWithDifferentName: [10106, 400, "consumer replacement durable config not the same"],
  ConsumerDescriptionTooLong: [10107, 400, "consumer description is too long, maximum allowed is {max}"],
  StreamHeaderExceedsMaximum: [10097, 400, "header size exceeds maximum allowed of 64k"],
  ConsumerWithFlowControlNeedsHeartbeats: [10108, 400, "consumer with flow control also needs heartbeats"],
  StreamSealed: [10109, 400, "invalid operation on sealed stream"],
  StreamPurgeFailed: [10110, 500, "{err}"],
  StreamRollupFailed: [10111, 500, "{err}"],
  ConsumerInvalidDeliverSubject: [10112, 400, "invalid push consumer deliver subject"],
  ConsumerMaxRequestBatchNegative: [10114, 400, "consumer max request batch needs to be > 0"],
  ConsumerMaxRequestExpiresToSmall: [10115, 400, "consumer max request expires needs to be >= 1ms"],
  ConsumerMaxDeliverBackoff: [10116, 400, "max deliver is required to be > length of backoff values"],
  ConsumerMaxPendingAckExcess: [10121, 400, "consumer max ack pending exceeds system limit of {limit}"],
  ConsumerInactiveThresholdExcess: [10153, 400, "consumer inactive threshold exceeds system limit of {limit}"],
  ConsumerNameContainsPathSeparators: [10127, 400, "Consumer name can not contain path separators"],
  StreamNameContainsPathSeparators: [10128, 400, "Stream name can not contain path separators"],
  ConsumerCreateFilterSubjectMismatch: [10131, 400, "Consumer create request did not match filtered subject from create subject"],
  ConsumerCreateDurableAndNameMismatch: [10132, 400, "Consumer Durable and Name have to be equal if both are provided"],
  ReplicasCountCannotBeNegative: [10133, 400, "replicas count cannot be negative"],
  ConsumerDuplicateFilterSubjects: [10136, 400, "consumer cannot have both FilterSubject and FilterSubjects specified"],
  ConsumerMultipleFiltersNotAllowed: [10137, 400, "consumer with multiple subject filters cannot use subject based API"],
  ConsumerOverlappingSubjectFilters: [10138, 400, "consumer subject filters cannot overlap"],
  ConsumerEmptyFilter: [10139, 400, "consumer filter in FilterSubjects cannot be empty"],
  ConsumerAlreadyExists: [10148, 400, "consumer already exists"],
  ConsumerPriorityPolicyWithoutGroup: [10159, 400, "Setting PriorityPolicy requires at least one PriorityGroup to be set"],
  ConsumerInvalidPriorityGroup: [10160, 400, "Provided priority group does not exist for this consumer"],
  ConsumerEmptyGroupName: [10161, 400, "Group name cannot be an empty string"],
  ConsumerInvalidGroupName: [10162, 400, "Valid priority group name must match A-Z, a-z, 0-9, -_/=)+ and may not exceed 16 characters"],
  MessageTTLInvalid: [10165, 400, "invalid per-message TTL"],
  MessageTTLDisabled: [10166, 400, "per-message TTL is disabled"],
  AtomicPublishDisabled: [10174, 400, "atomic publish is disabled"],
  AtomicPublishMissingSeq: [10175, 400, "atomic publish sequence is missing"],
  AtomicPublishIncompleteBatch: [10176, 400, "atomic publish batch is incomplete"],
  AtomicPublishUnsupportedHeaderBatch: [10177, 400, "atomic publish unsupported header used: {header}"],
  AtomicPublishInvalidBatchID: [10179, 400, "atomic publish batch ID is invalid"],
  AtomicPublishTooLargeBatch: [10199, 400, "atomic publish batch is too large: {size}"],
  AtomicPublishInvalidBatchCommit: [10200, 400, "atomic publish batch commit is invalid"],
  AtomicPublishContainsDuplicateMessage: [10201, 400, "atomic publish batch contains duplicate message id"],
  AtomicPublishTooManyInflight: [10210, 429, "atomic publish too many inflight"],
  ConsumerPushWithPriorityGroup: [10178, 400, "priority groups can not be used with push consumers"],
  MessageSchedulesDisabled: [10188, 400, "message schedules is disabled"],
  MessageSchedulesPatternInvalid: [10189, 400, "message schedules pattern is invalid"],
  MessageSchedulesTargetInvalid: [10190, 400, "message schedules target is invalid"],
  ConsumerDoesNotExist: [10149, 400, "consumer does not exist"],
  ConsumerPriorityGroupWithPolicyNone: [10196, 400, "consumer can not have priority groups when policy is none"],
  ConsumerPinnedTTLWithoutPriorityPolicyNone: [10197, 400, "PinnedTTL cannot be set when PriorityPolicy is none"],
} as const satisfies Record<string, readonly [number, number, string]>;

export type JsErrorName = keyof typeof JsError;

/** An API failure: thrown by handlers, turned into the response's `error`. */
export class ApiError extends Error {
  constructor(readonly json: ApiErrorJson) {
    super(json.description);
  }
}

/** The error JSON for a table entry, with placeholders ({err}, {seq}, {id}, {max}, {limit}) filled. */
export function apiError(name: JsErrorName, args: Record<string, string | number> = {}): ApiError {
  const [errCode, code, text] = JsError[name];
  const description = text.replace(/\{(\w+)\}/g, (_, k: string) => String(args[k] ?? ""));
  return new ApiError({ code, err_code: errCode, description });
}
