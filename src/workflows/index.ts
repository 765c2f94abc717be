export { apiDownIncident } from './apiDown';
export { redisIncident } from './redisDown';
export { genericIncident } from './genericIncident';
