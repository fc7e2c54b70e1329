import { inProcessTransport } from '../../src/index';
import { describeTransportContract } from '../contract/transport.contract';

describeTransportContract('in-process', async () => inProcessTransport());
