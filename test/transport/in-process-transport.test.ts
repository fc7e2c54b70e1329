import { inProcessTransport } from '../../src/index';
import { describeTransportContract, describeTransportContractAdditions } from '../contract/transport.contract';

describeTransportContract('in-process', async () => inProcessTransport());
describeTransportContractAdditions('in-process', async () => inProcessTransport());
