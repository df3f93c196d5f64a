"""Everything that talks to AWS: the SQS client, the SQS job queue and the SQS DLQ."""
